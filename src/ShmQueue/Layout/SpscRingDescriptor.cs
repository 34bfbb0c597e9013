using System.Runtime.CompilerServices;

namespace ShmIpc.Layout;

/// <summary>
/// The binary layout of one single-producer/single-consumer ring of variable-length records: its
/// three control lines (inside the owning structure's control block) and its records (in the data region).
/// <code>
/// Ring control (384 bytes, each hot word alone on a 128-byte line):
///   +0    Tail           int64  written only by the producer (release); read by the consumer (acquire).
///                               Producing end shared: by the holder of SendLock
///   +8    SendLock       int64  producing end shared only: 0 or the identity word of the process sending,
///                               CAS 0 -> identity to take, identity -> 0 to let go; CAS from a holder
///                               proved dead (pid + start time) to take it over. Zero while exclusive
///   +16..127                    zero
///   +128  Head           int64  written only by the consumer (release); read by the producer (acquire).
///                               Consuming end shared: by the holder of ReceiveLock
///   +136  ReceiveLock    int64  consuming end shared only: as SendLock, for the receivers
///   +144..255                   zero
///   +256  DataSleepers   int32  waiters for "not empty" (the consumer); see WaitSignal
///   +320  SpaceSleepers  int32  waiters for "has space" (the producer); see WaitSignal
///
/// Record (at data[position &amp; (Capacity - 1)], 8-byte aligned, never split by the wrap):
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |                         Length (int32)                        |  0
/// +---------------------------------------------------------------+
/// |   Type (int32): 1 message, 2 padding, 3 side segment reference |  4
/// +---------------------------------------------------------------+
/// |                     Payload: Length bytes                    ...  8
/// ...       then 0-7 bytes of filler up to the next multiple of 8   |
/// +---------------------------------------------------------------+
/// </code>
/// A record occupies <see cref="RecordSize"/> = 8 + align8(Length) bytes. A padding record fills the
/// bytes from its index to the end of the ring (its Length is that count minus 8) and is always
/// followed, in the same publication, by a message record at index 0.
/// Positions are byte counters that only grow (64-bit, never wrap in practice); Tail and Head are
/// multiples of 8 and 0 &lt;= Tail - Head &lt;= Capacity.
/// </summary>
internal static class SpscRingDescriptor
{
    /// <summary>Bytes of control block one ring takes.</summary>
    public const int ControlSize = 384;

    public const int TailOffset = 0;
    public const int HeadOffset = 128;

    /// <summary>On the Tail line: the senders write both, so taking the lock costs no extra line transfer.</summary>
    public const int SendLockOffset = 8;

    /// <summary>On the Head line, for the same reason.</summary>
    public const int ReceiveLockOffset = 136;
    public const int DataSleepersOffset = 256;
    public const int SpaceSleepersOffset = 320;

    public const int RecordHeaderLength = 8;
    public const int RecordAlignment = 8;
    public const int LengthOffset = 0;
    public const int TypeOffset = 4;

    public const int MessageType = 1;
    public const int PaddingType = 2;

    /// <summary>A message whose payload lives in a side segment: the record holds its reference (<see cref="SideSegmentDescriptor"/>).</summary>
    public const int SideType = 3;

    /// <summary>The smallest ring: big enough that the default maximum message is useful.</summary>
    public const int MinCapacity = 1024;

    /// <summary>The largest ring: 1 GiB per direction.</summary>
    public const int MaxCapacity = 1 << 30;

    /// <summary>Bytes a record of a <paramref name="length"/>-byte payload occupies.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long RecordSize(int length) => RecordHeaderLength + (((long)length + (RecordAlignment - 1)) & ~(long)(RecordAlignment - 1));

    /// <summary>
    /// The longest payload a ring of <paramref name="capacity"/> bytes accepts: a record of at most half
    /// the ring, so a record plus the padding before it (less than one record) always fits in an empty ring.
    /// </summary>
    public static int MaxMessageLengthFor(int capacity) => (capacity / 2) - RecordHeaderLength;

    /// <summary>True for a power of two within [<see cref="MinCapacity"/>, <see cref="MaxCapacity"/>].</summary>
    public static bool IsValidCapacity(long capacity) =>
        capacity is >= MinCapacity and <= MaxCapacity && (capacity & (capacity - 1)) == 0;
}
