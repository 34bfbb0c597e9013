namespace ShmIpc.Layout;

/// <summary>
/// The 128-byte lock block: the whole control block of a Lock segment, and the second 128 bytes of an Array or
/// Value segment's control block (their <c>Lock</c>). See native-notes/LAYOUT.md §7.3.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |   Owner: 0 when free, else the holder's identity word (§2)    |  0  CAS 0 -> identity by the acquirer;
/// |                                                               |     exchange to 0 by the holder; CAS dead -> me by a taker-over
/// +-------------------------------+-------------------------------+
/// |  OwnerThread (holder's thread)|  Recursion (holder's thread)  |  8  plain, written and read by the holding process only
/// +-------------------------------+-------------------------------+
/// |  Sleepers (§4)                |  Flags: bit 0 recursive       | 16  sleepers: waiters/notifiers; flags: creator, once
/// +-------------------------------+-------------------------------+
/// |                        zero (104 bytes)                        | 24..127
/// +---------------------------------------------------------------+
/// </code>
/// Owner, OwnerThread, Recursion and Sleepers share one cache line on purpose: the holder's release reads
/// Sleepers right after it exchanges Owner, and an uncontended lock touches one line only.
/// </summary>
internal static unsafe class LockDescriptor
{
    public const int BlockSize = 128;

    public const int OwnerOffset = 0;
    public const int OwnerThreadOffset = 8;
    public const int RecursionOffset = 12;
    public const int SleepersOffset = 16;
    public const int FlagsOffset = 20;

    /// <summary>Flags bit 0: recursion counted per owning thread (Python's RLock).</summary>
    public const uint FlagRecursive = 1;

    /// <summary>The semaphore the lock's waiters sleep on, in a Lock segment (an Array or Value uses its own s0 too).</summary>
    public const int Semaphore = 0;

    /// <summary>Writes a free lock block (creator only, before publishing the header).</summary>
    public static void Initialize(byte* block, bool recursive)
    {
        new Span<byte>(block, BlockSize).Clear();
        *(uint*)(block + FlagsOffset) = recursive ? FlagRecursive : 0;
    }

    /// <summary>Checks a lock block read from a peer; null when usable. The Owner word is checked where it is used.</summary>
    public static string? Validate(byte* block)
    {
        uint flags = *(uint*)(block + FlagsOffset);
        return (flags & ~FlagRecursive) != 0 ? $"lock flags 0x{flags:X}: unknown bits" : null;
    }
}
