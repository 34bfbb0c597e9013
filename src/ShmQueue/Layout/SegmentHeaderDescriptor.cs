using System.Buffers.Binary;
using ShmIpc.Memory;

namespace ShmIpc.Layout;

/// <summary>What a segment holds. Stored in the header; opening a segment as another kind is refused.</summary>
internal enum SegmentKind : uint
{
    Queue = 1,
    Pipe = 2,

    /// <summary>Shared state (issue 15): see native-notes/LAYOUT.md §7 and the descriptors that own each layout.</summary>
    SharedMemory = 3,
    Array = 4,
    Value = 5,
    Counter = 6,
    Lock = 7,
    Event = 8,
    Semaphore = 9,
    Condition = 10,
    Barrier = 11,

    /// <summary>The payload of one message too long for its queue's or pipe's ring (issue 17): see <see cref="SideSegmentDescriptor"/>.</summary>
    SideMessage = 12,

    /// <summary>A bare segment with semaphores only (tests, the foundation demo).</summary>
    Raw = 0x7F,
}

/// <summary>
/// The 128-byte header every ShmIpc segment starts with. All fields little-endian.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |            Magic "SHMIPC\0\0" (written last, release)          |  0
/// +-------------------------------+-------------------------------+
/// |         LayoutVersion         |             Kind              |  8
/// +-------------------------------+-------------------------------+
/// |                     TotalSize (file length)                   | 16
/// +-------------------------------+-------------------------------+
/// |        HeaderSize (128)       |             Flags             | 24
/// +-------------------------------+-------------------------------+
/// |                   ControlOffset (128)                         | 32
/// |                   ControlSize (multiple of 128)               | 40
/// |                   DataOffset (= ControlOffset + ControlSize)   | 48
/// |                   DataSize (DataOffset + DataSize = TotalSize) | 56
/// +-------------------------------+-------------------------------+
/// |          CreatorPid           |        SemaphoreCount         | 64
/// +-------------------------------+-------------------------------+
/// |                   CreatorStartTime                            | 72
/// |                   Reserved (zero) x 5                          | 80..119
/// |                   Checksum: FNV-1a 64 over bytes 8..119         | 120
/// +---------------------------------------------------------------+
/// </code>
/// Every field is written once by the creator before Magic and never changes after; readers copy them
/// into locals once and validate them against the real file length before using any of them.
/// </summary>
internal static unsafe class SegmentHeaderDescriptor
{
    public const int HeaderSize = 128;

    /// <summary>
    /// The one layout version this build reads and writes. 2: the queue control block gained its Shutdown word
    /// (QueueDescriptor.ShutdownOffset). A version-1 peer would ignore that word (keep enqueuing, or wait for
    /// ever on a drained queue), so the version is bumped and each side refuses the other's segments
    /// (<see cref="ShmSegmentError.UnsupportedVersion"/>) instead: see native-notes/LAYOUT.md §3.
    /// </summary>
    public const uint CurrentLayoutVersion = 2;

    /// <summary>
    /// The version of a queue created with features (acknowledged or joinable; QueueDescriptor.Deliveries.cs): such a
    /// queue gives existing words new meanings (Reader, ProducerIdentity, Unfinished) that a version-2 peer would ignore,
    /// so it would take a message without acking or never count its put. Version-2 builds refuse it
    /// (<see cref="ShmSegmentError.UnsupportedVersion"/>); this build reads both, and writes 3 only for such queues, so a
    /// plain queue still interoperates with older peers (native-notes/LAYOUT.md §3).
    /// </summary>
    public const uint FeaturesLayoutVersion = 3;

    /// <summary>"SHMIPC\0\0" read as a little-endian 64-bit integer.</summary>
    public const ulong MagicValue = 0x0000_4350_494D_4853;

    public const int MagicOffset = 0;
    public const int LayoutVersionOffset = 8;
    public const int KindOffset = 12;
    public const int TotalSizeOffset = 16;
    public const int HeaderSizeOffset = 24;
    public const int FlagsOffset = 28;
    public const int ControlOffsetOffset = 32;
    public const int ControlSizeOffset = 40;
    public const int DataOffsetOffset = 48;
    public const int DataSizeOffset = 56;
    public const int CreatorPidOffset = 64;
    public const int SemaphoreCountOffset = 68;
    public const int CreatorStartTimeOffset = 72;
    public const int ChecksumOffset = 120;

    public const int ChecksummedStart = 8;
    public const int ChecksummedEnd = 120;

    /// <summary>Flag bit 0: the segment and its semaphores were created with group read/write access.</summary>
    public const uint FlagGroupAccess = 1;

    /// <summary>
    /// Flag bit 1: the creator asked to keep the segment after it leaves (<c>UnlinkOnDispose = false</c>), so the
    /// automatic stale sweep leaves it alone once its creator is dead; <c>ShmMaintenance.RemoveStaleSegments</c> still removes it.
    /// </summary>
    public const uint FlagKeep = 2;

    /// <summary>Control blocks and data regions start on 128-byte boundaries (two cache lines).</summary>
    public const int RegionAlignment = 128;

    public const int MaxSemaphores = 8;

    /// <summary>The header's fields as read once from shared memory.</summary>
    public readonly record struct Fields(
        ulong Magic,
        uint LayoutVersion,
        SegmentKind Kind,
        ulong TotalSize,
        uint HeaderSize,
        uint Flags,
        ulong ControlOffset,
        ulong ControlSize,
        ulong DataOffset,
        ulong DataSize,
        int CreatorPid,
        uint SemaphoreCount,
        ulong CreatorStartTime,
        ulong Checksum)
    {
        public ProcessIdentity Creator => new(CreatorPid, CreatorStartTime);
    }

    /// <summary>Copies the header out of shared memory, the magic with acquire (it is published last).</summary>
    public static Fields Read(byte* header)
    {
        ulong magic = (ulong)MappedAtomics.ReadInt64Acquire(header + MagicOffset);
        var span = new ReadOnlySpan<byte>(header, HeaderSize);
        return new Fields(
            magic,
            BinaryPrimitives.ReadUInt32LittleEndian(span[LayoutVersionOffset..]),
            (SegmentKind)BinaryPrimitives.ReadUInt32LittleEndian(span[KindOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[TotalSizeOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(span[HeaderSizeOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(span[FlagsOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[ControlOffsetOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[ControlSizeOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[DataOffsetOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[DataSizeOffset..]),
            BinaryPrimitives.ReadInt32LittleEndian(span[CreatorPidOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(span[SemaphoreCountOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[CreatorStartTimeOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[ChecksumOffset..]));
    }

    /// <summary>Writes every field but the magic, with the checksum. The caller publishes with <see cref="Publish"/>.</summary>
    public static void Write(byte* header, SegmentKind kind, ulong totalSize, ulong controlSize, ulong dataSize,
        uint flags, uint semaphoreCount, ProcessIdentity creator, uint layoutVersion = CurrentLayoutVersion)
    {
        var span = new Span<byte>(header, HeaderSize);
        span.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(span[LayoutVersionOffset..], layoutVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(span[KindOffset..], (uint)kind);
        BinaryPrimitives.WriteUInt64LittleEndian(span[TotalSizeOffset..], totalSize);
        BinaryPrimitives.WriteUInt32LittleEndian(span[HeaderSizeOffset..], HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(span[FlagsOffset..], flags);
        BinaryPrimitives.WriteUInt64LittleEndian(span[ControlOffsetOffset..], HeaderSize);
        BinaryPrimitives.WriteUInt64LittleEndian(span[ControlSizeOffset..], controlSize);
        BinaryPrimitives.WriteUInt64LittleEndian(span[DataOffsetOffset..], HeaderSize + controlSize);
        BinaryPrimitives.WriteUInt64LittleEndian(span[DataSizeOffset..], dataSize);
        BinaryPrimitives.WriteInt32LittleEndian(span[CreatorPidOffset..], creator.Pid);
        BinaryPrimitives.WriteUInt32LittleEndian(span[SemaphoreCountOffset..], semaphoreCount);
        BinaryPrimitives.WriteUInt64LittleEndian(span[CreatorStartTimeOffset..], creator.StartTime);
        BinaryPrimitives.WriteUInt64LittleEndian(span[ChecksumOffset..], Checksum(span));
    }

    /// <summary>Release-stores the magic: everything the creator wrote before is visible to an opener that reads it.</summary>
    public static void Publish(byte* header) => MappedAtomics.WriteInt64Release(header + MagicOffset, (long)MagicValue);

    /// <summary>FNV-1a 64 over bytes 8..119 of the header.</summary>
    public static ulong Checksum(ReadOnlySpan<byte> header)
    {
        ulong hash = 0xcbf2_9ce4_8422_2325;
        foreach (byte b in header[ChecksummedStart..ChecksummedEnd])
        {
            hash = (hash ^ b) * 0x0000_0100_0000_01B3;
        }

        return hash;
    }

    /// <summary>
    /// Checks a header read from a file of <paramref name="fileLength"/> bytes. Returns null when it is
    /// valid, else the reason. The order matters: a header of another version is reported as such even
    /// though its fields may not make sense to us.
    /// </summary>
    public static (ShmSegmentError Error, string Detail)? Validate(in Fields h, ReadOnlySpan<byte> rawHeader, long fileLength, SegmentKind expectedKind)
    {
        if (fileLength < HeaderSize)
        {
            return (ShmSegmentError.Truncated, $"the file is {fileLength} bytes, shorter than the {HeaderSize}-byte header");
        }

        if (h.Magic == 0)
        {
            return (ShmSegmentError.NotInitialized, "the creator has not published the header (magic is zero)");
        }

        if (h.Magic != MagicValue)
        {
            return (ShmSegmentError.ForeignFormat, $"magic 0x{h.Magic:X16} is not ShmIpc's 0x{MagicValue:X16}");
        }

        if (h.LayoutVersion != CurrentLayoutVersion && !(h.LayoutVersion == FeaturesLayoutVersion && h.Kind == SegmentKind.Queue))
        {
            return (ShmSegmentError.UnsupportedVersion,
                $"layout version {h.LayoutVersion}, this build reads version {CurrentLayoutVersion} (and {FeaturesLayoutVersion} for a queue with features); "
                + (h.LayoutVersion > FeaturesLayoutVersion ? "it was made by a newer ShmIpc" : "it was made by an older ShmIpc"));
        }

        ulong checksum = Checksum(rawHeader);
        if (checksum != h.Checksum)
        {
            return (ShmSegmentError.Corrupted, $"header checksum 0x{h.Checksum:X16} does not match its contents (0x{checksum:X16})");
        }

        if (h.Kind != expectedKind)
        {
            return (ShmSegmentError.WrongKind, $"it is a {h.Kind} segment, expected {expectedKind}");
        }

        if (h.HeaderSize != HeaderSize)
        {
            return (ShmSegmentError.Corrupted, $"header size {h.HeaderSize}, expected {HeaderSize}");
        }

        if (h.TotalSize != (ulong)fileLength)
        {
            return h.TotalSize > (ulong)fileLength
                ? (ShmSegmentError.Truncated, $"the header states {h.TotalSize} bytes but the file has {fileLength}")
                : (ShmSegmentError.Corrupted, $"the header states {h.TotalSize} bytes but the file has {fileLength}");
        }

        if (h.ControlOffset != HeaderSize
            || h.ControlSize % RegionAlignment != 0
            || h.ControlSize > h.TotalSize
            || h.DataOffset != h.ControlOffset + h.ControlSize
            || h.DataSize > h.TotalSize
            || h.DataOffset + h.DataSize != h.TotalSize)
        {
            return (ShmSegmentError.Corrupted,
                $"regions do not tile the file: control {h.ControlOffset}+{h.ControlSize}, data {h.DataOffset}+{h.DataSize}, total {h.TotalSize}");
        }

        if (h.CreatorPid <= 0)
        {
            return (ShmSegmentError.Corrupted, $"creator pid {h.CreatorPid}");
        }

        if (h.SemaphoreCount > MaxSemaphores)
        {
            return (ShmSegmentError.Corrupted, $"{h.SemaphoreCount} semaphores, at most {MaxSemaphores}");
        }

        return null;
    }
}
