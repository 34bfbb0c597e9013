using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ShmIpc.Layout;

/// <summary>
/// The binary layout of a Queue segment: its control block (in the segment's control region) and the
/// records of its ring (in the data region). Owns every offset; see native-notes/LAYOUT.md §6.
/// <para>Control block (768 bytes; hot counters 128 bytes apart):</para>
/// <code>
///  offset  size  field            writer                          readers
///  0       8     Capacity         creator, once                   all (validated on open)
///  8       4     MaxMessageLength creator, once                   all (validated on open)
///  12      4     RecordAlignment  creator, once (32)              all (validated on open)
///  16      4     Shutdown         CAS by any process, only upward: 0 open, 1 shut down (drain), 2 shut down
///                                 immediately; never reset       acquire (validated &lt;= 2 on open)
///  20      4     Features         creator, once: bit 0 acknowledged, bit 1 joinable, bit 2 asymmetric fence (QueueDescriptor.Deliveries.cs)  all (unknown bits refused)
///  24      4     MaxDeliveries    creator, once: 0 unlimited      consumers of an acknowledged queue
///  264     8     Redeliveries     atomic add by whoever releases a taken record (acknowledged queues)   acquire
///  128     8     Tail             CAS by producers (claimer or helper)   acquire
///  256     8     ReadPosition     CAS by consumers (claimer or helper)   acquire
///  384     8     Head             reclaim-lock holder, release    acquire
///  392     8     ReclaimLock      CAS: 0 or the holder's identity word
///  512     4     DataSleepers     consumers waiting for a record (see WaitSignal)
///  640     4     SpaceSleepers    producers waiting for space
/// </code>
/// Shutdown shares the creator's read-only line: it is written at most twice in the queue's life, so it costs the
/// hot paths one load of a line that stays in every core's cache. All other bytes are zero.
/// Invariant: Head &lt;= ReadPosition &lt;= Tail &lt;= Head + Capacity. Positions are byte counters that only grow;
/// the record at position p lives at data offset p &amp; (Capacity - 1). Every position is a multiple of 32.
/// <para>Record (32-byte header, then the payload, padded to a multiple of 32):</para>
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------+-----------------------------------------------------+
/// |  kind   |                length (27 bits)                     |  0  Claim (u64): free stamp ~p, or
/// +---------+-----------------------------------------------------+      kind 1 message / 2 padding / 3 side
///                                                                          segment reference, length,
/// |                         producer pid                          |  4   producer pid; CAS by the producer
/// +---------------------------------------------------------------+
/// |                         state                                 |  8  State (u64): low 32 bits state
/// |                  position tag (p &gt;&gt; 5, low 32 bits)            | 12    (0 writing, 1 committed, 2 consumed,
/// +---------------------------------------------------------------+        3 abandoned), high 32 bits tag of p
/// |            Reader: free stamp ~p, or the consumer's            | 16  CAS by the consumer that takes it
/// |            identity word                                      |
/// +---------------------------------------------------------------+
/// |            ProducerIdentity: identity word, or 0              | 24  plain store by the producer after claiming
/// +---------------------------------------------------------------+
/// |            payload (length bytes) ... padding to 32           | 32
/// </code>
/// Free space is "stamped": every 32-byte unit that will next be used at position x holds
/// Claim = ~x, State = (tag(x) &lt;&lt; 32) | 0, Reader = ~x, ProducerIdentity = 0. Position-specific
/// stamps make every CAS fail for a process acting on a stale position (no ABA).
/// </summary>
internal static unsafe partial class QueueDescriptor
{
    public const int ControlSize = 768;

    public const int CapacityOffset = 0;
    public const int MaxMessageLengthOffset = 8;
    public const int RecordAlignmentOffset = 12;
    public const int ShutdownOffset = 16;
    public const int TailOffset = 128;
    public const int ReadPositionOffset = 256;
    public const int HeadOffset = 384;
    public const int ReclaimLockOffset = 392;
    public const int DataSleepersOffset = 512;
    public const int SpaceSleepersOffset = 640;

    /// <summary>Semaphore 0: consumers sleep on it. Semaphore 1: producers sleep on it.</summary>
    public const int DataSemaphore = 0;
    public const int SpaceSemaphore = 1;
    public const int SemaphoreCount = 2;

    public const int RecordAlignment = 32;
    public const int RecordHeaderSize = 32;

    public const int ClaimOffset = 0;
    public const int StateOffset = 8;
    public const int ReaderOffset = 16;
    public const int ProducerIdentityOffset = 24;

    /// <summary>Values of the Shutdown word: they only grow (open, then drain, then immediate).</summary>
    public const int ShutdownNone = 0;
    public const int ShutdownDrain = 1;
    public const int ShutdownImmediate = 2;

    public const uint KindMessage = 1;
    public const uint KindPadding = 2;

    /// <summary>A message whose payload lives in a side segment: the record holds only its reference (<see cref="SideSegmentDescriptor"/>).</summary>
    public const uint KindSide = 3;

    public const uint StateWriting = 0;
    public const uint StateCommitted = 1;
    public const uint StateConsumed = 2;
    public const uint StateAbandoned = 3;

    /// <summary>The length field has 27 bits.</summary>
    public const int MaxEncodableLength = (1 << 27) - 1;

    /// <summary>
    /// The longest message a queue may accept: its record, and so any wrap padding in front of it
    /// (always shorter than the record that needs it), must still fit the 27-bit length field.
    /// </summary>
    public const int MaxMessageLengthLimit = MaxEncodableLength - 63;

    public const long MinCapacity = 4096;
    public const long MaxCapacity = 1L << 30;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long RecordSize(int payloadLength) =>
        (RecordHeaderSize + (long)payloadLength + (RecordAlignment - 1)) & ~(long)(RecordAlignment - 1);

    /// <summary>The free stamp of position <paramref name="position"/> (low 5 bits are always 11111).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong FreeStamp(long position) => WordTagDescriptor.FreeStamp(position);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PositionTag(long position) => (uint)(position >> 5);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong StateWord(long position, uint state) => (PositionTag(position) << 32) | state;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ClaimWord(uint kind, int length, int pid) =>
        kind | ((ulong)(uint)length << 5) | ((ulong)(uint)pid << 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint KindOf(ulong claim) => (uint)claim & 31;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LengthOf(ulong claim) => (int)(((uint)claim >> 5) & MaxEncodableLength);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int PidOf(ulong claim) => (int)(claim >> 32);

    /// <summary>
    /// Decodes a claim word found at a position with <paramref name="bytesToEnd"/> bytes before the wrap,
    /// and checks it: false for anything a well-behaved peer cannot have written there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryDecodeClaim(ulong claim, long bytesToEnd, int maxMessageLength, out uint kind, out int length, out long recordSize)
    {
        kind = KindOf(claim);
        length = LengthOf(claim);
        if (kind is KindMessage or KindSide)
        {
            recordSize = RecordSize(length);
            return length <= (kind == KindMessage ? maxMessageLength : SideSegmentDescriptor.MaxRecordLength) && recordSize <= bytesToEnd;
        }

        recordSize = length;
        return kind == KindPadding && length == bytesToEnd && length > 0;
    }

    /// <summary>
    /// Stamps every 32-byte unit of [position, position + size) as free for its next lap. The first unit last, and in
    /// it the State stamp last, with release: a reader that loads State (acquire) and then Claim sees the Claim that goes
    /// with that State or a newer one, never an older lap's (see MpmcRing.TryBeginRead).
    /// </summary>
    /// <remarks>
    /// First unit last: its Claim, the only word that says how long the record is, is overwritten (with release) after
    /// every later unit is stamped. A reclaimer killed half-way leaves either the record whole at its start (the next
    /// reclaimer decodes it and stamps it again) or every later unit already free, so the next reclaimer, finding
    /// next-lap free stamps at Head, steps over them a unit at a time and never reads payload bytes as a Claim (see
    /// MpmcRing.TryReclaim).
    /// Design: the later units (<see cref="StampInterior"/>) are stamped with whole-unit vector stores, in any order and
    /// with no per-word ordering: nobody needs one. They lie inside a finished record behind ReadPosition, at positions
    /// no current record starts at; a process that reads one anyway holds a stale position (a consumer's ReadPosition, a
    /// producer's Tail), reads it as it would read payload bytes (the position tag and the Claim check fail, the stale
    /// position is noticed and retried: MpmcRing's "every value read is checked" rule), and no CAS can succeed on it,
    /// since a free stamp names a position of the next lap, which no stale view holds. The first unit's release store of
    /// its Claim orders every interior stamp before it (for a reclaimer taking over), and the reclaimer's release store
    /// of Head orders all of them before any producer may claim there (the producers' acquire of Head). The vector pass
    /// writes each 32-byte unit with one or two stores instead of four scalar stores and their arithmetic: for a 64 KiB
    /// record, 2,048 units, it is the reclaim's whole cost.
    /// </remarks>
    public static void StampFree(byte* data, long mask, long capacity, long position, long size)
    {
        long offsetMask = mask & ~(long)(RecordAlignment - 1);
        if (size > RecordAlignment)
        {
            StampInterior(data, offsetMask, capacity, position + RecordAlignment, position + size);
        }

        byte* unit = data + (position & offsetMask);
        long next = position + capacity;

        // Release: every later unit's stamps, stored before, are visible to whoever sees this Claim free, so a reclaimer
        // taking over never steps into a unit that still looks in use (see remarks).
        MappedAtomics.WriteInt64Release(unit + ClaimOffset, (long)FreeStamp(next));
        MappedAtomics.WriteInt64Plain(unit + ReaderOffset, (long)FreeStamp(next));
        MappedAtomics.WriteInt64Plain(unit + ProducerIdentityOffset, 0);
        MappedAtomics.WriteInt64Release(unit + StateOffset, (long)StateWord(next, StateWriting));
    }

    /// <summary>
    /// Stamps the units of [from, to) (inside one record, so contiguous in the data region) for their next lap: whole
    /// 32-byte units (Claim ~x, State tag(x) &lt;&lt; 32, Reader ~x, ProducerIdentity 0, x the unit's next-lap position)
    /// by vector stores. No ordering among them: see <see cref="StampFree"/>'s remarks.
    /// </summary>
    private static void StampInterior(byte* data, long offsetMask, long capacity, long from, long to)
    {
        long units = (to - from) / RecordAlignment;
        long next = from + capacity;
        byte* unit = data + (from & offsetMask);
        if ((from & offsetMask) + (units * RecordAlignment) > capacity)
        {
            // A record never crosses the end of the data region; guard anyway: unit by unit, each address masked.
            for (long x = from; x < to; x += RecordAlignment)
            {
                StampUnitPlain(data + (x & offsetMask), x + capacity);
            }

            return;
        }

        // Per unit, the next-lap position grows by 32: ~x falls by 32 and the State's tag (x >> 5, high half) grows by 1.
        const ulong Down = unchecked((ulong)-RecordAlignment);
        const ulong TagStep = 1UL << 32;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<ulong> stamp = Vector256.Create(FreeStamp(next), StateWord(next, StateWriting), FreeStamp(next), 0UL);
            Vector256<ulong> step = Vector256.Create(Down, TagStep, Down, 0UL);
            for (long i = 0; i < units; i++, unit += RecordAlignment)
            {
                stamp.Store((ulong*)unit);
                stamp += step;
            }
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            Vector128<ulong> claimState = Vector128.Create(FreeStamp(next), StateWord(next, StateWriting));
            Vector128<ulong> readerIdentity = Vector128.Create(FreeStamp(next), 0UL);
            Vector128<ulong> step = Vector128.Create(Down, TagStep);
            Vector128<ulong> readerStep = Vector128.Create(Down, 0UL);
            for (long i = 0; i < units; i++, unit += RecordAlignment)
            {
                claimState.Store((ulong*)unit);
                readerIdentity.Store((ulong*)(unit + ReaderOffset));
                claimState += step;
                readerIdentity += readerStep;
            }
        }
        else
        {
            for (long i = 0; i < units; i++, unit += RecordAlignment, next += RecordAlignment)
            {
                StampUnitPlain(unit, next);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StampUnitPlain(byte* unit, long next)
    {
        MappedAtomics.WriteInt64Plain(unit + ClaimOffset, (long)FreeStamp(next));
        MappedAtomics.WriteInt64Plain(unit + StateOffset, (long)StateWord(next, StateWriting));
        MappedAtomics.WriteInt64Plain(unit + ReaderOffset, (long)FreeStamp(next));
        MappedAtomics.WriteInt64Plain(unit + ProducerIdentityOffset, 0);
    }

    /// <summary>Writes a fresh control block and stamps the whole ring for lap 0 (creator only, before publishing).</summary>
    public static void Initialize(byte* control, byte* data, long capacity, int maxMessageLength)
    {
        new Span<byte>(control, ControlSize).Clear();
        *(long*)(control + CapacityOffset) = capacity;
        *(int*)(control + MaxMessageLengthOffset) = maxMessageLength;
        *(int*)(control + RecordAlignmentOffset) = RecordAlignment;
        StampFree(data, capacity - 1, capacity, -capacity, capacity);
    }

    /// <summary>Checks a control block read from a peer; null when it is usable, else why not.</summary>
    public static string? Validate(byte* control, long controlSize, long dataSize, int semaphoreCount)
    {
        if (semaphoreCount != SemaphoreCount)
        {
            return $"{semaphoreCount} semaphores, a queue has {SemaphoreCount}";
        }

        if (controlSize < ControlSize)
        {
            return $"control block of {controlSize} bytes, a queue needs {ControlSize}";
        }

        long capacity = *(long*)(control + CapacityOffset);
        int maxLength = *(int*)(control + MaxMessageLengthOffset);
        int alignment = *(int*)(control + RecordAlignmentOffset);
        if (capacity < MinCapacity || capacity > MaxCapacity || (capacity & (capacity - 1)) != 0 || capacity != dataSize)
        {
            return $"capacity {capacity} is not a power of two between {MinCapacity} and {MaxCapacity} equal to the data size {dataSize}";
        }

        if (maxLength < 0 || RecordSize(maxLength) > capacity / 2 || maxLength > MaxMessageLengthLimit)
        {
            return $"maximum message length {maxLength} does not fit the capacity {capacity}";
        }

        if (alignment != RecordAlignment)
        {
            return $"record alignment {alignment}, expected {RecordAlignment}";
        }

        string? features = ValidateFeatures(control);
        if (features is not null)
        {
            return features;
        }

        int shutdown = MappedAtomics.ReadInt32Acquire(control + ShutdownOffset);
        if (shutdown is < ShutdownNone or > ShutdownImmediate)
        {
            return $"shutdown word {shutdown}, expected 0, 1 or 2";
        }

        // Read in the order the counters are allowed to pass each other, so live traffic cannot fail the check.
        long head = MappedAtomics.ReadInt64Acquire(control + HeadOffset);
        long read = MappedAtomics.ReadInt64Acquire(control + ReadPositionOffset);
        long tail = MappedAtomics.ReadInt64Acquire(control + TailOffset);
        if (head < 0 || head > read || read > tail || ((head | read | tail) & (RecordAlignment - 1)) != 0)
        {
            return $"positions out of order: head {head}, read {read}, tail {tail}";
        }

        return null;
    }
}
