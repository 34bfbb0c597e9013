using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using ShmIpc.Signaling;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

/// <summary>
/// A many-producer, many-consumer ring of variable-length records over mapped memory. No waiting, no logging, no OS
/// calls of its own: callers (<see cref="ShmQueue"/>) add those and decide about dead peers. The one exception is
/// delegated: after a lost race a claim or a take calls <see cref="LostRace.StepAside"/> (a short spin, or a yield on an
/// oversubscribed machine), which may read /proc/loadavg (at most every 20 ms) and yield the core.
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
        int losses = 0; // races lost in this call (LostRace.StepAside)
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
                LostRace.StepAside(++losses); // another producer claimed here first
                continue;
            }

            ulong mine = wrap ? ClaimWord(KindPadding, (int)toEnd, _pid) : claim;
            if ((ulong)MappedAtomics.CompareExchangeInt64(record + ClaimOffset, (long)mine, (long)stamp) != stamp)
            {
                LostRace.StepAside(++losses);
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
