using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

/// <summary>
/// A many-producer, many-consumer ring of variable-length records over mapped memory. No OS calls,
/// no waiting, no logging: callers (<see cref="ShmQueue"/>) add those and decide about dead peers.
/// </summary>
/// <remarks>
/// Design (layout in <see cref="QueueDescriptor"/>):
/// - Producers claim space by CAS on the *record's claim word* at the tail position, from that position's
///   free stamp to (kind, length, pid), then advance Tail by CAS. Anyone who finds a claimed record at
///   Tail advances Tail past it (helping), so a producer killed between the two CASes cannot wedge
///   the ring, and the record's length is always known. A producer whose view of Tail is stale fails
///   its CAS: the stamp it expects names a position the memory no longer holds.
/// - A producer then writes its identity word, the payload, and release-stores State = committed
///   (pairs with the consumer's acquire load of State).
/// - Consumers look at ReadPosition. Padding, consumed and abandoned records are skipped by CAS on
///   ReadPosition. A committed record is taken by CAS on its Reader word from the position's free stamp
///   to the consumer's identity (exactly one consumer wins), then ReadPosition is advanced (by the
///   winner or a helper), so a consumer that stalls while reading holds up no other consumer.
///   The winner reads the payload and release-stores State = consumed. A winner that only copies the payload out
///   (the plain dequeue: TryBeginRead's advanceLater) advances ReadPosition after that store instead
///   (<see cref="EndReadAndAdvance"/>: its CAS doubles as the space notify's fence; others help meanwhile).
/// - A record still being written (state 0) at ReadPosition stops consumers: <see cref="ReadStatus.Pending"/>
///   names its producer, and the caller abandons it (<see cref="TryAbandon"/>) once it has proved that
///   producer dead. A paused live producer is waited for, never overtaken.
/// - Space is reclaimed in order by whoever holds ReclaimLock (CAS from 0 to its identity; a dead
///   holder's lock is taken over by the caller): records behind ReadPosition that are consumed,
///   abandoned or padding are re-stamped free for their next lap, then Head is release-stored past them
///   (pairs with the producers' acquire of Head: stamps are visible before the space is claimed).
///   A record behind ReadPosition still committed was taken by a consumer that has not finished:
///   reclaiming stops there (<see cref="TryReclaim"/> reports it) until it finishes or is proved dead.
/// - Every value read from shared memory is checked before use; an impossible one is reported as
///   corruption only if the position it was read at is still current (a stale read just retries).
///   Every address is (position &amp; mask) plus a checked record size, so nothing outside the data region is touched.
/// Crash at each step: producer before its claim CAS: nothing happened. Between claim and Tail CAS:
/// helpers advance Tail. Before commit: the record is abandoned after its owner is proved dead (only it is
/// lost). Consumer before its Reader CAS: nothing. After it: ReadPosition is helped; the claimed message
/// is lost and its space reclaimed once its reader is proved dead. Reclaimer mid-stamp: the next reclaimer
/// takes the lock over and starts again at Head; records are stamped last unit first, so it finds either a
/// record whole at its start (stamped again: stamps are idempotent) or units already free, which it steps
/// over one by one (TryReclaim). Stamping first unit first, a takeover found the record's size overwritten
/// and reported the ring corrupt for good (a producer killed mid-reclaim by a test's SIGKILL).
/// Shutdown (a word of the control block, CAS by anyone, only upward, never reset):
///   from       event                         to         who
///   0 open     Shutdown()                    1 drain    any process (RaiseShutdown, then notify s0 and s1)
///   0 open     Shutdown(immediate: true)     2 immed.   any process (same)
///   1 drain    Shutdown(immediate: true)     2 immed.   any process (same); a later Shutdown() leaves it at 2
/// - A producer reads it before claiming (refuse at once) and again after its claim and Tail CASes (full
///   fences, so the second load cannot be satisfied before the claim is visible). Seeing it set then, it
///   release-stores State = abandoned instead of committing: a claim is either committed by a producer
///   that saw "open" after claiming, or abandoned. The shutter CASes the word (a full fence) and then
///   notifies. So once a consumer has seen the word set, has fenced, and then finds ReadPosition == Tail
///   (<see cref="ReadStatus.Empty"/>), every record claimed before the word was set is visible to it, and every
///   later one will be abandoned: nothing can ever be delivered again, and it may report "shut down".
///   A record at ReadPosition still being written (<see cref="ReadStatus.Pending"/>) is waited for, as ever.
/// - Immediate shutdown: consumers stop taking records at all (the caller checks before TryBeginRead); what
///   is queued stays in the ring, undelivered, until the segment goes.
/// </remarks>
internal sealed unsafe partial class MpmcRing
{
    private readonly byte* _control;
    private readonly byte* _data;
    private readonly long _capacity;
    private readonly long _mask;

    /// <summary>Mask for record offsets: keeps even a garbage position aligned and inside the data region.</summary>
    private readonly long _offsetMask;
    private readonly int _maxMessageLength;
    private readonly int _pid;
    private readonly ulong _identity;
    private readonly string _name;

    /// <summary>
    /// A lower bound of Head, re-read only when it says "full" (Head only grows, so a stale value is
    /// merely pessimistic). Volatile: the thread that read Head with acquire passes that ordering on.
    /// </summary>
    private long _cachedHead;

    public MpmcRing(byte* control, byte* data, string name, int pid, ulong identityWord)
    {
        _control = control;
        _data = data;
        _capacity = *(long*)(control + CapacityOffset);
        _mask = _capacity - 1;
        _offsetMask = _mask & ~(long)(RecordAlignment - 1);
        _maxMessageLength = *(int*)(control + MaxMessageLengthOffset);
        _name = name;
        _pid = pid;
        _identity = identityWord;
        _joinable = (*(int*)(control + FeaturesOffset) & FeatureJoinable) != 0;
    }

    public long Capacity => _capacity;

    public int MaxMessageLength => _maxMessageLength;

    private byte* Tail => _control + TailOffset;

    private byte* ReadPosition => _control + ReadPositionOffset;

    private byte* Head => _control + HeadOffset;

    private byte* ReclaimLock => _control + ReclaimLockOffset;

    private byte* ShutdownWord => _control + ShutdownOffset;

    /// <summary>The Shutdown word (acquire): <see cref="ShutdownNone"/>, <see cref="ShutdownDrain"/> or <see cref="ShutdownImmediate"/>.</summary>
    public int ShutdownState
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => MappedAtomics.ReadInt32Acquire(ShutdownWord);
    }

    /// <summary>
    /// Raises the Shutdown word to <paramref name="state"/> (never lowers it) by CAS, a full fence: callers notify
    /// both semaphores after it. Returns the value found before (a value out of range counts as corruption).
    /// </summary>
    public int RaiseShutdown(int state)
    {
        int seen = ShutdownState;
        while (seen < state)
        {
            int found = MappedAtomics.CompareExchangeInt32(ShutdownWord, state, seen);
            if (found == seen)
            {
                return seen;
            }

            seen = found;
        }

        if (seen > ShutdownImmediate)
        {
            ThrowCorruption(MappedAtomics.ReadInt64Acquire(ReadPosition), $"shutdown word {seen}");
        }

        return seen;
    }

    /// <summary>Appends a message; <see cref="WriteStatus.Full"/> when the ring has no room (the caller reclaims and retries).</summary>
    /// <param name="message">The payload.</param>
    /// <param name="kind">Message, or a side-segment reference.</param>
    /// <param name="deliveries">
    /// When above 0 (a dead letter, into an acknowledged queue): the record's Deliveries word is written before publishing,
    /// so its first take reports that count (see <see cref="CountPut"/>'s file for why the window is safe).
    /// </param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public WriteStatus TryWrite(ReadOnlySpan<byte> message, uint kind = KindMessage, int deliveries = 0)
    {
        if (ShutdownState != ShutdownNone)
        {
            return WriteStatus.ShutDown;
        }

        long position = TryClaim(message.Length, kind);
        if (position < 0)
        {
            return WriteStatus.Full;
        }

        byte* record = _data + (position & _offsetMask);

        // After the claim and Tail CASes (full fences): see "Shutdown" in the remarks.
        if (ShutdownState != ShutdownNone)
        {
            MappedAtomics.WriteInt64Release(record + StateOffset, (long)StateWord(position, StateAbandoned));
            return WriteStatus.ShutDownAbandoned;
        }

        // Inline 8-byte moves for small payloads, no span built over the record (PayloadCopy's remarks); the claim checked
        // that the record holds message.Length bytes.
        PayloadCopy.Copy(record + RecordHeaderSize, message);
        if (deliveries > 0)
        {
            WriteDeliveries(record, position, deliveries);
        }

        CountPut();

        // Publish: pairs with the acquire load of State in TryBeginRead.
        MappedAtomics.WriteInt64Release(record + StateOffset, (long)StateWord(position, StateCommitted));
        return WriteStatus.Written;
    }

    /// <summary>Claims a record for <paramref name="length"/> payload bytes; its position, or -1 when full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal long TryClaim(int length, uint kind = KindMessage)
    {
        // The common case inline: the record fits before the end of the data region, the cached Head says there is room,
        // the claim word at Tail is still its free stamp and the claim CAS wins. The same steps as the first pass of the
        // loop in TryClaimAny (its comments give the reasons); anything else (a stale Head, a wrap, a claim made by
        // another producer, an odd Tail) goes there and starts over. The load before the CAS is kept: with many
        // producers, a CAS bound to fail would take the line from the producer that won it.
        long need = RecordSize(length);
        long tail = MappedAtomics.ReadInt64Acquire(Tail);
        long offset = tail & _offsetMask;
        long head = Volatile.Read(ref _cachedHead);
        if ((tail & (RecordAlignment - 1)) == 0 && need <= _capacity - offset && tail >= head && tail + need <= head + _capacity)
        {
            byte* record = _data + offset;
            ulong stamp = FreeStamp(tail);
            if ((ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset) == stamp
                && (ulong)MappedAtomics.CompareExchangeInt64(record + ClaimOffset, (long)ClaimWord(kind, length, _pid), (long)stamp) == stamp)
            {
                // Read by consumers only to check our liveness; a plain store is enough (0 until then).
                MappedAtomics.WriteInt64Plain(record + ProducerIdentityOffset, (long)_identity);

                // Failure means a helper already advanced Tail past our record.
                MappedAtomics.CompareExchangeInt64(Tail, tail + need, tail);
                return tail;
            }
        }

        return TryClaimAny(length, kind);
    }

    /// <summary><see cref="TryClaim"/> for every case: the loop that re-reads Head, pads at the end, helps Tail and retries.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private long TryClaimAny(int length, uint kind)
    {
        long need = RecordSize(length);
        ulong claim = ClaimWord(kind, length, _pid);
        while (true)
        {
            long tail = MappedAtomics.ReadInt64Acquire(Tail);
            if ((tail & (RecordAlignment - 1)) != 0)
            {
                ThrowCorruption(tail, "the tail is not a multiple of 32");
            }

            long offset = tail & _offsetMask;
            long toEnd = _capacity - offset;
            bool wrap = need > toEnd;
            long size = wrap ? toEnd : need;
            long head = Volatile.Read(ref _cachedHead);
            if (tail + size > head + _capacity || tail < head)
            {
                head = MappedAtomics.ReadInt64Acquire(Head);
                Volatile.Write(ref _cachedHead, head);
                if (tail < head)
                {
                    // Our tail is stale (Head has moved past it) unless Tail itself is behind Head.
                    if (MappedAtomics.ReadInt64Acquire(Tail) < MappedAtomics.ReadInt64Acquire(Head))
                    {
                        ThrowCorruption(tail, "the tail is behind the head");
                    }

                    continue;
                }
            }

            if (tail + size > head + _capacity)
            {
                return -1;
            }

            byte* record = _data + offset;
            ulong stamp = FreeStamp(tail);
            ulong seen = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
            if (seen != stamp)
            {
                HelpTail(tail, seen, toEnd);
                continue;
            }

            ulong mine = wrap ? ClaimWord(KindPadding, (int)toEnd, _pid) : claim;
            if ((ulong)MappedAtomics.CompareExchangeInt64(record + ClaimOffset, (long)mine, (long)stamp) != stamp)
            {
                continue;
            }

            if (!wrap)
            {
                // Read by consumers only to check our liveness; a plain store is enough (0 until then).
                MappedAtomics.WriteInt64Plain(record + ProducerIdentityOffset, (long)_identity);
            }

            // Failure means a helper already advanced Tail past our record.
            MappedAtomics.CompareExchangeInt64(Tail, tail + size, tail);
            if (!wrap)
            {
                return tail;
            }
        }
    }

    /// <summary>
    /// Test hook: leaves the ring exactly as a producer killed between its claim CAS and its Tail CAS
    /// leaves it, for a padding record (claimed, Tail not advanced). Returns false if Tail was not at a spot needing padding.
    /// </summary>
    internal bool ClaimPaddingAsIfKilled(int pid)
    {
        long tail = MappedAtomics.ReadInt64Acquire(Tail);
        long toEnd = _capacity - (tail & _offsetMask);
        ulong stamp = FreeStamp(tail);
        return toEnd < _capacity
            && (ulong)MappedAtomics.CompareExchangeInt64(_data + (tail & _offsetMask) + ClaimOffset, (long)ClaimWord(KindPadding, (int)toEnd, pid), (long)stamp) == stamp;
    }

    /// <summary>The three counters (tests check the invariant Head &lt;= ReadPosition &lt;= Tail).</summary>
    internal (long Head, long Read, long Tail) Positions =>
        (MappedAtomics.ReadInt64Acquire(Head), MappedAtomics.ReadInt64Acquire(ReadPosition), MappedAtomics.ReadInt64Acquire(Tail));

    /// <summary>Tail points at a claimed record: advance it past that record (or find our view was stale).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void HelpTail(long tail, ulong seen, long toEnd)
    {
        if (TryDecodeClaim(seen, toEnd, _maxMessageLength, out _, out _, out long size))
        {
            MappedAtomics.CompareExchangeInt64(Tail, tail + size, tail);
            return;
        }

        if (MappedAtomics.ReadInt64Acquire(Tail) == tail)
        {
            ThrowCorruption(tail, $"the word at the tail is neither its free stamp nor a valid claim (0x{seen:X16})");
        }
    }

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

    /// <summary><see cref="TryBeginRead"/> for every case: the loop that skips, helps, waits and reports.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReadStatus TryBeginReadAny(out ReadLease lease, out Blocker pending, int maxLength, bool advanceLater)
    {
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

                    // Another consumer took it: help it past.
                    MappedAtomics.CompareExchangeInt64(ReadPosition, read + size, read);
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

    /// <summary>True when a message of <paramref name="length"/> bytes would fit now (ignoring wrap padding).</summary>
    public bool HasSpaceFor(int length)
    {
        long head = MappedAtomics.ReadInt64Acquire(Head);
        long tail = MappedAtomics.ReadInt64Acquire(Tail);
        long need = RecordSize(length);
        long toEnd = _capacity - (tail & _offsetMask);
        return tail + (need > toEnd ? toEnd + need : need) <= head + _capacity;
    }
}
