using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace ShmIpc.Layout;

/// <summary>
/// The binary layout of a side segment (a message longer than its queue's or pipe's MaxMessageLength) and of the
/// small ring record that names it. See native-notes/LAYOUT.md §9.
/// <para>A side segment is an ordinary ShmIpc segment (header of <see cref="SegmentHeaderDescriptor"/>, kind
/// <see cref="SegmentKind.SideMessage"/>, no semaphores, mode 0600 or 0660 as its host) whose control block is:</para>
/// <code>
///  offset  size  field      writer                                    readers
///  0       8     State      CAS: 0 writing (sender), 4 published (sender, release, before the ring record),
///                           a consumer's identity word (the consumer that takes it, CAS from 4),
///                           6 free (that consumer, release, when done; the sender CASes 6 -> 0 to reuse it)
///  8       8     Length     sender, before State = 4                  the consumer, after its acquire of State
///  16      4     Retained   sender: 1 while it keeps the segment for reuse, 0 (exchange) when it lets go
///  20      4     HostLength creator, once: bytes of HostName
///  24      232   HostName   creator, once: the OS name of the queue or pipe that carries the record (ASCII)
/// </code>
/// The payload is the data region (its size is the segment's capacity, at least Length).
/// <para>Ring record (the payload of a queue record of kind 3, or of a pipe record of type 3):</para>
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |                 Magic "SIDE" (0x45444953)                     |  0
/// +---------------------------------------------------------------+
/// |                 NameLength (int32, 1..207)                    |  4
/// +---------------------------------------------------------------+
/// |                 Length (int64): the message's bytes           |  8
/// |                                                               |
/// +---------------------------------------------------------------+
/// |     Name: the side segment's OS name (ASCII, "shmipc." ...)  ...  16
/// +---------------------------------------------------------------+
/// </code>
/// Ownership (who removes it): state 0 and 6, the sender (its creator) while Retained, else whoever finishes last;
/// state 4, the host (the record in its ring); a consumer's identity, that consumer. A dead owner is proved by pid
/// and start time; the stale sweep applies exactly these rules (<see cref="StaleReason"/>), and never removes a
/// segment that a live process maps.
/// </summary>
internal static unsafe class SideSegmentDescriptor
{
    public const int ControlSize = 256;

    public const int StateOffset = 0;
    public const int LengthOffset = 8;
    public const int RetainedOffset = 16;
    public const int HostLengthOffset = 20;
    public const int HostNameOffset = 24;
    public const int MaxHostLength = ControlSize - HostNameOffset;

    /// <summary>Values of State besides a consumer's identity word (tags 00000, 00100, 00110: never an identity).</summary>
    public const ulong StateWriting = 0;
    public const ulong StatePublished = 4;
    public const ulong StateFree = 6;

    public const uint RecordMagic = 0x4544_4953;
    public const int RecordMagicOffset = 0;
    public const int RecordNameLengthOffset = 4;
    public const int RecordLengthOffset = 8;
    public const int RecordNameOffset = 16;
    public const int MaxNameLength = 207;

    /// <summary>The longest reference record.</summary>
    public const int MaxRecordLength = RecordNameOffset + MaxNameLength;

    /// <summary>The OS name prefix of side segments: "shmipc.side-&lt;pid&gt;-&lt;start time, 8 hex&gt;-&lt;sequence&gt;".</summary>
    public const string NamePrefix = "side-";

    /// <summary>Writes the control block of a new side segment (creator only, before it is published).</summary>
    public static void Initialize(byte* control, string hostOsName)
    {
        new Span<byte>(control, ControlSize).Clear();
        int length = Encoding.ASCII.GetBytes(hostOsName.AsSpan(0, Math.Min(hostOsName.Length, MaxHostLength)), new Span<byte>(control + HostNameOffset, MaxHostLength));
        *(int*)(control + HostLengthOffset) = length;
        *(int*)(control + RetainedOffset) = 1;
    }

    /// <summary>The host's OS name written at creation (empty when the field is out of range).</summary>
    public static string HostName(ReadOnlySpan<byte> control)
    {
        int length = BinaryPrimitives.ReadInt32LittleEndian(control[HostLengthOffset..]);
        return length is > 0 and <= MaxHostLength ? Encoding.ASCII.GetString(control.Slice(HostNameOffset, length)) : "";
    }

    /// <summary>Writes the reference record for side segment <paramref name="osName"/> holding <paramref name="length"/> bytes; returns its size.</summary>
    public static int WriteRecord(Span<byte> record, string osName, long length)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(record[RecordMagicOffset..], RecordMagic);
        int nameLength = Encoding.ASCII.GetBytes(osName, record[RecordNameOffset..]);
        BinaryPrimitives.WriteInt32LittleEndian(record[RecordNameLengthOffset..], nameLength);
        BinaryPrimitives.WriteInt64LittleEndian(record[RecordLengthOffset..], length);
        return RecordNameOffset + nameLength;
    }

    /// <summary>The message length a reference record announces, or -1 when the record is malformed (read before the record is taken).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long RecordMessageLength(ReadOnlySpan<byte> record) =>
        record.Length >= RecordNameOffset && BinaryPrimitives.ReadUInt32LittleEndian(record) == RecordMagic
            ? BinaryPrimitives.ReadInt64LittleEndian(record[RecordLengthOffset..])
            : -1;

    /// <summary>The length a reference record announces as an int: <see cref="int.MaxValue"/> for a malformed one, which no reader takes.</summary>
    public static int AnnouncedLength(ReadOnlySpan<byte> record)
    {
        long length = RecordMessageLength(record);
        return length is >= 0 and <= int.MaxValue ? (int)length : int.MaxValue;
    }

    /// <summary>Decodes a reference record read from a peer; null when it is not one we can follow, with the reason.</summary>
    public static string? TryReadRecord(ReadOnlySpan<byte> record, out string osName, out long length)
    {
        osName = "";
        length = RecordMessageLength(record);
        if (length < 0)
        {
            return $"a side-segment record of {record.Length} bytes without its magic";
        }

        int nameLength = BinaryPrimitives.ReadInt32LittleEndian(record[RecordNameLengthOffset..]);
        if (nameLength is <= 0 or > MaxNameLength || RecordNameOffset + nameLength > record.Length || length > Array.MaxLength)
        {
            return $"a side-segment record naming {nameLength} bytes of name for {length} bytes of message";
        }

        osName = Encoding.ASCII.GetString(record.Slice(RecordNameOffset, nameLength));
        return null;
    }

    /// <summary>
    /// The sweep's verdict on a side segment whose control block is <paramref name="control"/>: null when its owner (by
    /// State, see the type's remarks) is proved dead or gone, else why it must stay. <paramref name="isAlive"/> judges an
    /// identity word (32-bit start time); <paramref name="creatorAlive"/> is the creator's liveness; <paramref name="hostExists"/>
    /// tells whether a segment of that OS name exists. The caller still requires that nobody maps it.
    /// </summary>
    public static string? StaleReason(ReadOnlySpan<byte> control, bool creatorAlive, Func<ulong, bool> isAlive, Func<string, bool> hostExists)
    {
        ulong state = BinaryPrimitives.ReadUInt64LittleEndian(control[StateOffset..]);
        if (WordTagDescriptor.IsIdentity(state))
        {
            return isAlive(state) ? $"the consumer reading it, pid {WordTagDescriptor.IdentityPid(state)}, is running" : null;
        }

        if (state == StatePublished)
        {
            string host = HostName(control);
            return host.Length > 0 && hostExists(host) ? $"it carries a message still queued in {host}" : null;
        }

        return creatorAlive ? "its sender is running" : null;
    }
}
