using System.Runtime.CompilerServices;

namespace ShmIpc.Layout;

/// <summary>
/// The tagged 64-bit words that name who holds something in shared memory: a record header's writer or reader, a pipe
/// end's owner and holders, a lock's owner. The low 5 bits say what the word is, so one load tells a live holder from a
/// pending handover, a shared end or a freed record, and no two kinds can ever be equal (native-notes/LAYOUT.md §6):
/// <code>
///  63                              32 31                          5 4   0
/// +----------------------------------+-----------------------------+-----+
/// | start time, low 32 bits          | pid (27 bits)               |00001|  identity
/// | random nonce (59 bits)                                         |00010|  handover (token not yet used)
/// | 0                                                              |00011|  shared pipe end (holders listed apart)
/// | 0                 | deliveries so far (27 bits)                |00100|  released queue record (acknowledged queue)
/// | position tag      | deliveries begun (27 bits)                 |00101|  delivery count of a queue record
/// | ~position (position is 32-aligned, so these bits are 11111)    |11111|  free stamp of a queue record
/// +----------------------------------------------------------------+-----+
/// </code>
/// 0 means "nobody". This type owns the encodings; the descriptors and <c>ProcessIdentity</c> use it.
/// </summary>
internal static class WordTagDescriptor
{
    /// <summary>The tag bits.</summary>
    public const ulong TagMask = 0x1F;

    /// <summary>How far the payload (pid, nonce) is shifted above the tag.</summary>
    public const int TagBits = 5;

    public const ulong IdentityTag = 1;
    public const ulong HandoverTag = 2;

    /// <summary>The whole word of a shared pipe end's Owner: tag 00011, nothing else.</summary>
    public const ulong SharedOwnerWord = 3;

    /// <summary>A queue record's Reader word once its taker let go of it unacked (QueueDescriptor.Deliveries.cs).</summary>
    public const ulong ReleasedTag = 4;

    /// <summary>A queue record's Deliveries word (QueueDescriptor.Deliveries.cs).</summary>
    public const ulong DeliveriesTag = 5;

    /// <summary>The tag of a free stamp (the complement of a 32-aligned position).</summary>
    public const ulong FreeStampTag = 0x1F;

    /// <summary>The identity word of process <paramref name="pid"/> started at <paramref name="startTime"/> (low 32 bits kept).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong IdentityWord(int pid, ulong startTime) => ((ulong)(uint)startTime << 32) | ((ulong)(uint)pid << TagBits) | IdentityTag;

    /// <summary>The pid of an identity word.</summary>
    public static int IdentityPid(ulong word) => (int)((uint)word >> TagBits);

    /// <summary>The start time (low 32 bits) of an identity word.</summary>
    public static ulong IdentityStartTime(ulong word) => word >> 32;

    /// <summary>True when <paramref name="word"/> is an identity word (tag 00001 and a pid).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsIdentity(ulong word) => (word & TagMask) == IdentityTag && ((uint)word >> TagBits) != 0;

    /// <summary>The handover word carrying <paramref name="nonce"/> (its low 59 bits; not zero).</summary>
    public static ulong HandoverWord(ulong nonce) => (nonce << TagBits) | HandoverTag;

    /// <summary>True when <paramref name="word"/> is a handover word (tag 00010 and a nonce).</summary>
    public static bool IsHandover(ulong word) => (word & TagMask) == HandoverTag && (word >> TagBits) != 0;

    /// <summary>The free stamp of queue position <paramref name="position"/> (a multiple of 32): its complement, tag 11111.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong FreeStamp(long position) => ~(ulong)position;
}
