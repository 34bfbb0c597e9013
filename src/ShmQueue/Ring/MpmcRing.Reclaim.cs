using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

// Space and repair: reclaiming finished records, skipping or releasing what dead peers left, and the read-only
// views (count, state) the tools and tests use. The design and the crash table are in MpmcRing.cs.
internal sealed unsafe partial class MpmcRing
{
    /// <summary>Bytes behind ReadPosition not yet reclaimed.</summary>
    public long ReclaimableBytes() =>
        MappedAtomics.ReadInt64Acquire(ReadPosition) - MappedAtomics.ReadInt64Acquire(Head);

    /// <summary>
    /// Marks a record that is still being written as abandoned. Only call after proving its producer
    /// dead. False when it changed meanwhile (committed after all, or already skipped).
    /// </summary>
    public bool TryAbandon(long position)
    {
        byte* record = _data + (position & _offsetMask);
        long writing = (long)StateWord(position, StateWriting);
        return MappedAtomics.CompareExchangeInt64(record + StateOffset, (long)StateWord(position, StateAbandoned), writing) == writing;
    }

    /// <summary>
    /// Marks a record whose reader died before finishing as consumed (its message is lost). Only call
    /// after proving that reader dead.
    /// </summary>
    public bool TryReleaseDeadReader(long position, ulong readerIdentity)
    {
        byte* record = _data + (position & _offsetMask);
        if ((ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset) != readerIdentity)
        {
            return false;
        }

        long committed = (long)StateWord(position, StateCommitted);
        return MappedAtomics.CompareExchangeInt64(record + StateOffset, (long)StateWord(position, StateConsumed), committed) == committed;
    }

    /// <summary>The identity word holding the reclaim lock, or 0.</summary>
    public ulong ReclaimLockOwner => OwnerWordLock.Holder(ReclaimLock);

    /// <summary>Takes over the reclaim lock of a holder proved dead.</summary>
    public bool TryBreakReclaimLock(ulong deadOwner) => OwnerWordLock.TryBreak(ReclaimLock, deadOwner);

    /// <summary>
    /// Reclaims finished records behind the read position. Returns the bytes freed. When it had to stop
    /// at a record still being read, <paramref name="blockedBy"/> names it and its reader.
    /// </summary>
    public long TryReclaim(out Blocker? blockedBy)
    {
        blockedBy = null;
        if (ReclaimableBytes() <= 0)
        {
            return 0;
        }

        if (!OwnerWordLock.TryEnter(ReclaimLock, _identity))
        {
            return 0;
        }

        long start = MappedAtomics.ReadInt64Acquire(Head);
        long head = start;
        try
        {
            if ((start & (RecordAlignment - 1)) != 0)
            {
                ThrowCorruption(start, "the head is not a multiple of 32");
            }

            // Never past Tail, whatever ReadPosition says (a consumer may skip a padding record a
            // moment before Tail is advanced past it).
            long read = Math.Min(MappedAtomics.ReadInt64Acquire(ReadPosition), MappedAtomics.ReadInt64Acquire(Tail));
            while (head < read)
            {
                long offset = head & _offsetMask;
                byte* record = _data + offset;
                ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
                if (claim == FreeStamp(head + _capacity))
                {
                    // Freed for the next lap already: a reclaimer died here before moving Head. Records are
                    // stamped last unit first (StampFree), so every unit from here to the next record's start
                    // is free too: finish this one (its State store may not have happened) and step over it.
                    StampFree(_data, _mask, _capacity, head, RecordAlignment);
                    head += RecordAlignment;
                    continue;
                }

                if (!TryDecodeClaim(claim, _capacity - offset, _maxMessageLength, out uint kind, out _, out long size))
                {
                    ThrowCorruption(head, $"invalid claim word 0x{claim:X16} behind the read position");
                }

                if (kind != KindPadding)
                {
                    ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset);
                    if (state >> 32 != PositionTag(head))
                    {
                        ThrowCorruption(head, $"state word 0x{state:X16} is tagged for another position");
                    }

                    uint s = (uint)state;
                    if (s == StateWriting)
                    {
                        ThrowCorruption(head, "a record behind the read position is still marked as being written");
                    }

                    if (s == StateCommitted)
                    {
                        ulong reader = (ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset);
                        blockedBy = new Blocker(head, PidOf(claim), reader);
                        break;
                    }
                }

                if (head + size > read)
                {
                    ThrowCorruption(head, $"a record of {size} bytes reaches past the read position {read}");
                }

                StampFree(_data, _mask, _capacity, head, size);
                head += size;
            }
        }
        finally
        {
            // Stamps before Head (pairs with the producers' acquire of Head), then let go of the lock.
            // Both by CAS: if our lock was broken (we were wrongly judged dead), we must neither move
            // Head backwards nor release somebody else's lock.
            if (head != start)
            {
                MappedAtomics.CompareExchangeInt64(Head, head, start);
            }

            OwnerWordLock.Exit(ReclaimLock, _identity);
        }

        return head - start;
    }

    /// <summary>Messages between the read position and the tail (committed or being written). A snapshot.</summary>
    public int CountMessages()
    {
        long read = MappedAtomics.ReadInt64Acquire(ReadPosition);
        long tail = MappedAtomics.ReadInt64Acquire(Tail);
        int count = 0;
        for (long position = read; position < tail && position - read <= _capacity;)
        {
            long offset = position & _offsetMask;
            ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(_data + offset + ClaimOffset);
            if (!TryDecodeClaim(claim, _capacity - offset, _maxMessageLength, out uint kind, out _, out long size))
            {
                break; // Moved under us; a snapshot is all qsize promises.
            }

            if (kind != KindPadding)
            {
                ulong state = (ulong)MappedAtomics.ReadInt64Acquire(_data + offset + StateOffset);
                uint s = (uint)state;
                if (state >> 32 == PositionTag(position) && (s == StateWriting || (s == StateCommitted
                    && (ulong)MappedAtomics.ReadInt64Acquire(_data + offset + ReaderOffset) == FreeStamp(position))))
                {
                    count++;
                }
            }

            position += size;
        }

        return count;
    }

    /// <summary>The counters and the header at the read position, for diagnostics.</summary>
    public string DescribeState()
    {
        long read = MappedAtomics.ReadInt64Acquire(ReadPosition);
        byte* record = _data + (read & _offsetMask);
        return $"head {MappedAtomics.ReadInt64Acquire(Head)}, read {read}, tail {MappedAtomics.ReadInt64Acquire(Tail)}, " +
            $"reclaim lock 0x{ReclaimLockOwner:X}, at read: claim 0x{(ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset):X16} " +
            $"state 0x{(ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset):X16} reader 0x{(ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset):X16}";
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowCorruption(long position, string detail) => throw new ShmCorruptionException(_name, position, detail);
}
