using ShmIpc.Memory;

namespace ShmIpc.Layout;

/// <summary>
/// The control block of a pipe segment (after the 128-byte segment header) and where its rings live.
/// <code>
/// control offset  size  word            single writer, ordering
/// --------------  ----  --------------  ------------------------------------------------------------
///    0 (line 0)      8  Capacity        creator, before the header's magic; constant after
///    8               8  MaxMessageLen   creator, before the magic; constant after
///   16               4  RingCount       creator, before the magic: 1 (one-way) or 2 (duplex)
///   20               4  Flags           bit e set: end e is shared (SharedEndFlag). Zero at creation; a bit
///                                       is set by CAS (never cleared) by a holder of end e inside its
///                                       send and receive exclusion, before it gives out a share token.
///                                       Peers of layout 1 without shared ends validate Flags = 0, so they
///                                       refuse a pipe with a shared end instead of sending without the lock.
///                                       Bit 2 (AsymmetricFenceFlag): set by the creator before the magic, never
///                                       changed: the asymmetric sleeper fence (LAYOUT §4, SleeperFence).
///   24..127             zero
///  128 (line 1)      8  End0.Owner      end 0 = the creator's end. Identity word of its owner (§2),
///                                       written by the creator before the magic; handover marker or
///                                       new owner by CAS; SharedOwnerWord once the end is shared
///  136               8  End0.Closed     0 open, 1 closed: release store by end 0's owner (shared: by the
///                                       last holder to leave), never reset
///  144             112  End0.Holders    14 words, used once end 0 is shared: 0 free, an identity word (a
///                                       holder), or a handover word (a share token not yet redeemed).
///                                       Claimed and cleared by CAS
///  256 (line 2)      8  End1.Owner      end 1 = the connector's end. 0 until Connect claims it by CAS
///  264               8  End1.Closed     as End0.Closed
///  272             112  End1.Holders    as End0.Holders
///  384 (lines 3-5)      Ring 0          carries end 1 -> end 0 (exists always); SpscRingDescriptor (its
///                                       SendLock and ReceiveLock words serve the shared ends)
///  768 (lines 6-8)      Ring 1          carries end 0 -> end 1 (duplex only; zero otherwise)
/// 1152                  end (ControlSize)
///
/// data region:  [ ring 0: Capacity bytes ][ ring 1: Capacity bytes, duplex only ]
/// semaphores:   s0 ring 0 data available, s1 ring 0 space available,
///               s2 ring 1 data available, s3 ring 1 space available (duplex only)
/// </code>
/// End <c>e</c> receives from ring <c>e</c> and sends on ring <c>1 - e</c> (when those rings exist),
/// so a one-way pipe's creator end only receives and its connector end only sends.
/// </summary>
internal static unsafe class PipeDescriptor
{
    public const int CapacityOffset = 0;
    public const int MaxMessageLengthOffset = 8;
    public const int RingCountOffset = 16;
    public const int FlagsOffset = 20;

    public const int EndSlotsOffset = 128;
    public const int EndSlotSize = 128;
    public const int OwnerOffset = 0;
    public const int ClosedOffset = 8;
    public const int HoldersOffset = 16;

    /// <summary>How many processes (or handles) may hold one shared end at once: the words left in its 128-byte slot.</summary>
    public const int MaxHolders = (EndSlotSize - HoldersOffset) / 8;

    /// <summary>Flags bit of end <paramref name="end"/>: set once the end is shared.</summary>
    public static int SharedEndFlag(int end) => 1 << end;

    /// <summary>
    /// Flags bit 2: the asymmetric sleeper fence (LAYOUT.md §4, Signaling/SleeperFence.cs): every waiter issues
    /// membarrier(GLOBAL_EXPEDITED) after registering, so registered senders may skip their fence. Written at creation only.
    /// </summary>
    public const int AsymmetricFenceFlag = 1 << 2;

    /// <summary>Every Flags bit this layout defines.</summary>
    public const int KnownFlags = 0b111;

    /// <summary>Whether the pipe is marked for the asymmetric sleeper fence (Flags bit 2).</summary>
    public static bool HasAsymmetricFence(byte* control) => (MappedAtomics.ReadInt32Acquire(control + FlagsOffset) & AsymmetricFenceFlag) != 0;

    /// <summary>
    /// The Owner word of a shared end: bits 0-4 = 00011 (neither 0, an identity word nor a handover word), the rest 0.
    /// Its holders are in the Holders words. A peer that predates shared ends treats it as "not gone", as it does a
    /// handover word.
    /// </summary>
    public const ulong SharedOwnerWord = WordTagDescriptor.SharedOwnerWord;

    public const int RingsOffset = 384;
    public const int ControlSize = RingsOffset + (2 * SpscRingDescriptor.ControlSize);

    public const int CreatorEnd = 0;
    public const int ConnectorEnd = 1;


    /// <summary>Offset in the control block of end <paramref name="end"/>'s slot.</summary>
    public static int EndSlotOffset(int end) => EndSlotsOffset + (end * EndSlotSize);

    /// <summary>Offset in the control block of ring <paramref name="ring"/>'s control lines.</summary>
    public static int RingControlOffset(int ring) => RingsOffset + (ring * SpscRingDescriptor.ControlSize);

    /// <summary>Offset in the data region of ring <paramref name="ring"/>'s bytes.</summary>
    public static long RingDataOffset(int ring, int capacity) => (long)ring * capacity;

    public static int DataSemaphore(int ring) => 2 * ring;

    public static int SpaceSemaphore(int ring) => (2 * ring) + 1;

    /// <summary>
    /// True for the owner word of an end handed over and not yet claimed (<see cref="WordTagDescriptor.HandoverWord"/>:
    /// tag 00010, bits 5-63 a random nonce the handover token carries).
    /// </summary>
    public static bool IsHandoverWord(ulong word) => WordTagDescriptor.IsHandover(word);

    /// <summary>Address of holder word <paramref name="index"/> of the end slot at <paramref name="slot"/>.</summary>
    public static byte* Holder(byte* slot, int index) => slot + HoldersOffset + (8 * index);

    /// <summary>The fixed geometry of a pipe, as written by its creator.</summary>
    public readonly record struct Geometry(int Capacity, int MaxMessageLength, int RingCount)
    {
        public bool Duplex => RingCount == 2;
    }

    /// <summary>Fills a fresh (all-zero) control block; the segment's magic publishes it.</summary>
    public static void Initialize(byte* control, Geometry geometry, ulong creatorWord, bool asymmetricFence = false)
    {
        MappedAtomics.WriteInt64Plain(control + CapacityOffset, geometry.Capacity);
        MappedAtomics.WriteInt64Plain(control + MaxMessageLengthOffset, geometry.MaxMessageLength);
        *(int*)(control + RingCountOffset) = geometry.RingCount;
        *(int*)(control + FlagsOffset) = asymmetricFence ? AsymmetricFenceFlag : 0;
        MappedAtomics.WriteInt64Plain(control + EndSlotOffset(CreatorEnd) + OwnerOffset, (long)creatorWord);
    }

    /// <summary>
    /// Checks a pipe's control block, read from a peer, against the sizes of its segment: null (and its
    /// <paramref name="geometry"/>) when it describes a pipe of that size, else why not. Everything here was written
    /// before the header's magic the opener read with acquire, so plain reads see it.
    /// </summary>
    /// <param name="control">The control block (mapped, or a private copy).</param>
    /// <param name="controlSize">The control block's size, from the segment header.</param>
    /// <param name="dataSize">The data region's size, from the segment header.</param>
    /// <param name="semaphoreCount">The semaphore count, from the segment header.</param>
    /// <param name="geometry">The rings' geometry when valid.</param>
    public static string? Validate(byte* control, long controlSize, long dataSize, int semaphoreCount, out Geometry geometry)
    {
        geometry = default;
        if (controlSize != ControlSize)
        {
            return $"control block is {controlSize} bytes, a pipe's is {ControlSize}";
        }

        long capacity = MappedAtomics.ReadInt64Plain(control + CapacityOffset);
        long maxLength = MappedAtomics.ReadInt64Plain(control + MaxMessageLengthOffset);
        int rings = *(int*)(control + RingCountOffset);
        int flags = *(int*)(control + FlagsOffset);
        if (!SpscRingDescriptor.IsValidCapacity(capacity))
        {
            return $"capacity {capacity} is not a power of two in [{SpscRingDescriptor.MinCapacity}, {SpscRingDescriptor.MaxCapacity}]";
        }

        if (rings is not (1 or 2))
        {
            return $"ring count {rings}, expected 1 or 2";
        }

        if ((flags & ~KnownFlags) != 0)
        {
            return $"flags 0x{flags:X8}, only bits 0-1 (shared ends) and 2 (asymmetric fence) are defined";
        }

        if (maxLength < 0 || maxLength > SpscRingDescriptor.MaxMessageLengthFor((int)capacity))
        {
            return $"maximum message length {maxLength} is outside [0, {SpscRingDescriptor.MaxMessageLengthFor((int)capacity)}] for capacity {capacity}";
        }

        if (dataSize != rings * capacity)
        {
            return $"data region is {dataSize} bytes, {rings} ring(s) of {capacity} need {rings * capacity}";
        }

        if (semaphoreCount != 2 * rings)
        {
            return $"{semaphoreCount} semaphores, {rings} ring(s) need {2 * rings}";
        }

        for (int ring = 0; ring < rings; ring++)
        {
            byte* ringControl = control + RingControlOffset(ring);
            long tail = MappedAtomics.ReadInt64Acquire(ringControl + SpscRingDescriptor.TailOffset);
            long head = MappedAtomics.ReadInt64Acquire(ringControl + SpscRingDescriptor.HeadOffset);
            if (head < 0 || ((head | tail) & (SpscRingDescriptor.RecordAlignment - 1)) != 0 || tail - head < 0 || tail - head > capacity)
            {
                return $"ring {ring} has head {head} and tail {tail}, which are not 8-aligned positions at most {capacity} apart";
            }
        }

        geometry = new Geometry((int)capacity, (int)maxLength, rings);
        return null;
    }
}
