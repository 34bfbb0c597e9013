using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using ShmIpc.Signaling;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

// The consumer's side: taking the record at ReadPosition, releasing it, and the read-only looks (readable, pending)
// the waits use. The design and the crash table are in MpmcRing.cs.
internal sealed unsafe partial class MpmcRing
{
    /// <summary>Claims the next committed record for this consumer.</summary>
    /// <remarks>
    /// The fast path reads only ReadPosition and the record's own header, never Tail (a line the
    /// producers write on every message): a free stamp for the read position means "empty", and the
    /// State word's position tag tells a record of this lap from an older one. Tail is consulted only
    /// to tell an anomaly from a stale read.
    /// </remarks>
    /// <param name="lease">The record taken (when <see cref="ReadStatus.Claimed"/>).</param>
    /// <param name="pending">What stops the read (when <see cref="ReadStatus.Pending"/> or <see cref="ReadStatus.TooLarge"/>).</param>
    /// <param name="maxLength">The longest message the caller can take.</param>
    /// <param name="advanceLater">
    /// Leave ReadPosition at the record taken: the caller finishes with <see cref="EndReadAndAdvance"/>, whose CAS of
    /// ReadPosition comes after the State = consumed store and is the full fence a space notify needs (see the remarks of
    /// <see cref="EndReadAndAdvance"/>). For short reads only (a copy): meanwhile other consumers help ReadPosition past the record.
    /// </param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadStatus TryBeginRead(out ReadLease lease, out Blocker pending, int maxLength = int.MaxValue, bool advanceLater = false)
    {
        // The common case inline: a committed message of this lap at ReadPosition, short enough, taken at the first CAS.
        // The same loads in the same order and the same checks as the first pass of the loop in TryBeginReadAny (its
        // comments give the reasons); anything else (empty, pending, padding, consumed, a side reference, a lost CAS, a
        // stale or odd header) goes there and starts over.
        long read = MappedAtomics.ReadInt64Acquire(ReadPosition);
        long offset = read & _offsetMask;
        byte* record = _data + offset;
        ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset);
        ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
        if (state == StateWord(read, StateCommitted)
            && (read & (RecordAlignment - 1)) == 0
            && TryDecodeClaim(claim, _capacity - offset, _maxMessageLength, out uint kind, out int length, out long size)
            && kind == KindMessage
            && length <= maxLength)
        {
            ulong free = FreeStamp(read);
            if ((ulong)MappedAtomics.CompareExchangeInt64(record + ReaderOffset, (long)_identity, (long)free) == free)
            {
                if (!advanceLater)
                {
                    MappedAtomics.CompareExchangeInt64(ReadPosition, read + size, read);
                }

                pending = default;
                lease = new ReadLease(read, record, length, kind);
                return ReadStatus.Claimed;
            }
        }

        return TryBeginReadAny(out lease, out pending, maxLength, advanceLater);
    }

    /// <summary><see cref="TryBeginRead"/> for every case: the loop that skips, helps and reports what stops it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReadStatus TryBeginReadAny(out ReadLease lease, out Blocker pending, int maxLength, bool advanceLater)
    {
        int losses = 0; // races lost in this call (LostRace.StepAside)
        lease = default;
        pending = default;
        while (true)
        {
            long read = MappedAtomics.ReadInt64Acquire(ReadPosition);
            long offset = read & _offsetMask;
            byte* record = _data + offset;

            // State first, then Claim: every State tagged for `read` was published (release) after the
            // Claim that goes with it, so the Claim loaded next belongs to this lap's record or is newer;
            // a newer one means ReadPosition has moved on and every CAS below fails.
            ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset);
            ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
            if (claim == FreeStamp(read))
            {
                return ReadStatus.Empty;
            }

            if (state >> 32 != PositionTag(read) || (read & (RecordAlignment - 1)) != 0)
            {
                // A record of an older lap not yet reclaimed (the queue is empty), or our read position is stale.
                if (IsEmptyOrStale(read, $"state word 0x{state:X16} is tagged for another position"))
                {
                    return ReadStatus.Empty;
                }

                continue;
            }

            if (!TryDecodeClaim(claim, _capacity - offset, _maxMessageLength, out uint kind, out int length, out long size))
            {
                if (IsEmptyOrStale(read, $"invalid claim word 0x{claim:X16}"))
                {
                    return ReadStatus.Empty;
                }

                continue;
            }

            if (kind == KindPadding)
            {
                // Its producer may not have advanced Tail yet: help it first, so ReadPosition never passes Tail.
                MappedAtomics.CompareExchangeInt64(Tail, read + size, read);
                MappedAtomics.CompareExchangeInt64(ReadPosition, read + size, read);
                continue;
            }

            switch ((uint)state)
            {
                case StateCommitted:
                    ulong free = FreeStamp(read);
                    int announced = kind == KindSide ? SideLength(record, length) : length;
                    if (announced > maxLength)
                    {
                        if ((ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset) != free)
                        {
                            // Already taken by another consumer: not ours to refuse.
                            MappedAtomics.CompareExchangeInt64(ReadPosition, read + size, read);
                            LostRace.StepAside(++losses);
                            continue;
                        }

                        pending = new Blocker(read, announced, 0);
                        return ReadStatus.TooLarge;
                    }

                    if ((ulong)MappedAtomics.CompareExchangeInt64(record + ReaderOffset, (long)_identity, (long)free) == free)
                    {
                        // Ours. Let the others move on at once (or, with advanceLater, in EndReadAndAdvance: they help meanwhile).
                        if (!advanceLater)
                        {
                            MappedAtomics.CompareExchangeInt64(ReadPosition, read + size, read);
                        }

                        lease = new ReadLease(read, record, length, kind);
                        return ReadStatus.Claimed;
                    }

                    // Another consumer took it: help it past, then step aside so that it gets ahead (or a producer gets our core).
                    MappedAtomics.CompareExchangeInt64(ReadPosition, read + size, read);
                    LostRace.StepAside(++losses);
                    continue;
                case StateConsumed:
                case StateAbandoned:
                    MappedAtomics.CompareExchangeInt64(ReadPosition, read + size, read);
                    continue;
                case StateWriting:
                    pending = new Blocker(read, PidOf(claim), (ulong)MappedAtomics.ReadInt64Acquire(record + ProducerIdentityOffset));
                    return ReadStatus.Pending;
                default:
                    // The tag says this lap's record and the claim is valid: an unknown state is not a stale
                    // read (re-checking would find the same header forever), it is corruption.
                    if (MappedAtomics.ReadInt64Acquire(ReadPosition) == read)
                    {
                        ThrowCorruption(read, $"unknown record state {(uint)state}");
                    }

                    continue;
            }
        }
    }

    /// <summary>The length of the message a committed side reference announces (read after the acquire of State).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int SideLength(byte* record, int referenceLength) =>
        SideSegmentDescriptor.AnnouncedLength(new ReadOnlySpan<byte>(record + RecordHeaderSize, referenceLength));

    /// <summary>
    /// Something unexpected sits at <paramref name="read"/>. True when that is because nothing has been
    /// enqueued there yet (ReadPosition == Tail); false when our read position was stale (retry).
    /// Throws when the position is current and past it the tail says a record must be there.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool IsEmptyOrStale(long read, string detail)
    {
        long tail = MappedAtomics.ReadInt64Acquire(Tail);
        if (MappedAtomics.ReadInt64Acquire(ReadPosition) != read)
        {
            return false;
        }

        if (read == tail)
        {
            return true;
        }

        if (read > tail)
        {
            ThrowCorruption(read, $"the read position is past the tail ({tail})");
        }

        // read < tail: a record was claimed here, so the header must be valid.
        // Re-read once (State, then Claim): a claim made between our reads is legitimate.
        byte* record = _data + (read & _offsetMask);
        ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset);
        ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
        if ((TryDecodeClaim(claim, _capacity - (read & _offsetMask), _maxMessageLength, out _, out _, out _) && state >> 32 == PositionTag(read))
            || MappedAtomics.ReadInt64Acquire(ReadPosition) != read)
        {
            return false;
        }

        ThrowCorruption(read, detail);
        return false;
    }

    /// <summary>Releases a record read through <paramref name="lease"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EndRead(in ReadLease lease) =>
        MappedAtomics.WriteInt64Release(lease.Record + StateOffset, (long)StateWord(lease.Position, StateConsumed));

    /// <summary>
    /// Releases a record taken with <c>advanceLater</c>: release-stores State = consumed, then advances ReadPosition past it
    /// by CAS (failure: a helper did it already). The CAS is a full fence after the consumed store, so the caller may read
    /// the space sleepers' count without another (<see cref="Signaling.WaitSignal.NotifyFenced"/>).
    /// </summary>
    /// <remarks>
    /// Design: what a peer may observe is unchanged, only when: a taken record (Reader = the taker's identity, State
    /// committed) stands at ReadPosition for the length of the taker's copy instead of a few instructions. Every consumer
    /// (this one, the C and Python peers, LAYOUT.md §6.4) already treats that as "another consumer has it" and helps
    /// ReadPosition past it, as it must for a taker paused or killed between its two CASes; reclaim stops at ReadPosition,
    /// and a record a helper moved ReadPosition past before the taker's consumed store is, to reclaim, a taken record still
    /// being read (it stops there until the taker finishes or is proved dead), as before this change. Crash: a taker killed before the CAS leaves the record at
    /// ReadPosition, committed; the next consumer helps past it and the reclaimer then finds it behind ReadPosition with a
    /// dead reader and releases it (§6.6), as before. The win: the consumed store, the ReadPosition CAS and the space
    /// notify's read of SpaceSleepers need one locked instruction instead of two (the CAS and a fence). A producer asleep for
    /// space registers (a full-fence increment) and then re-checks ReadPosition - Head and reclaims: either it sees the
    /// consumed record behind ReadPosition, or this read of SpaceSleepers sees its registration and posts.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EndReadAndAdvance(in ReadLease lease)
    {
        MappedAtomics.WriteInt64Release(lease.Record + StateOffset, (long)StateWord(lease.Position, StateConsumed));
        MappedAtomics.CompareExchangeInt64(ReadPosition, lease.Position + RecordSize(lease.Length), lease.Position);
    }

    /// <summary>True when a consumer would find something to do (a record that is not being written).</summary>
    public bool HasReadable()
    {
        long read = MappedAtomics.ReadInt64Acquire(ReadPosition);
        byte* record = _data + (read & _offsetMask);
        ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset); // State, then Claim: see TryBeginRead
        ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
        if (claim == FreeStamp(read))
        {
            return false;
        }

        // A claim is there: readable unless it is this lap's message still being written (a padding
        // record keeps the stamp's "writing" state: it is readable, a consumer skips it). Anything odd
        // counts as readable so the caller looks closer (TryBeginRead sorts it out).
        if (state >> 32 != PositionTag(read))
        {
            return read != MappedAtomics.ReadInt64Acquire(Tail);
        }

        return (uint)state != StateWriting || KindOf(claim) == KindPadding;
    }

    /// <summary>The record being written at the read position, if that is what stops consumers.</summary>
    public bool TryGetPending(out Blocker pending)
    {
        pending = default;
        long read = MappedAtomics.ReadInt64Acquire(ReadPosition);
        if (read == MappedAtomics.ReadInt64Acquire(Tail))
        {
            return false;
        }

        byte* record = _data + (read & _offsetMask);
        ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset); // State, then Claim: see TryBeginRead
        ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
        if (KindOf(claim) == KindPadding || state != StateWord(read, StateWriting))
        {
            return false;
        }

        pending = new Blocker(read, PidOf(claim), (ulong)MappedAtomics.ReadInt64Acquire(record + ProducerIdentityOffset));
        return true;
    }
}
