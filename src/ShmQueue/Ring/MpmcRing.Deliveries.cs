using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

/// <summary>
/// Acknowledged delivery over the same records (words in <see cref="QueueDescriptor"/>, QueueDescriptor.Deliveries.cs).
/// </summary>
/// <remarks>
/// Design: a record is redelivered in place, never copied.
/// - Take: exactly the plain <see cref="TryBeginRead"/> (CAS Reader from the free stamp to the taker's identity, then
///   ReadPosition moves on); the record simply stays "committed" until it is settled, and reclaiming stops at it, so its
///   bytes stay valid and its space stays held (a long-held delivery holds every producer once the ring wraps to it).
/// - Ack: the taker checks Reader is still its identity and release-stores State = consumed (<see cref="EndRead"/>).
/// - Release (a Nack by the taker, or anybody who proved the taker dead by pid + start time): one CAS on Reader from the
///   taker's identity to Released(n), n = the deliveries begun (the record's Deliveries word, 1 when it has none), then an
///   atomic add on the control block's Redeliveries counter. A released record lies behind ReadPosition, so consumers
///   find it by a scan from Head to ReadPosition, made only when Redeliveries moved since their last scan that found
///   nothing (<see cref="TryTakeReleased"/>) or when a waiting consumer looks for dead takers anyway.
/// - Retake of Released(n): raise the Deliveries word by CAS to Deliveries(p, n + 1) (never lowering it; contenders that
///   saw the same Released(n) write the same value), then CAS Reader from Released(n) to the taker's identity. The raise
///   comes first so that a taker killed right after its CAS leaves its count for the releaser to find.
/// Crash at each step: taker before its Reader CAS: nothing happened. After it (at any point until its Ack's store): the
///   record is taken by a dead identity; the next waiting consumer or blocked producer proves it dead and releases it
///   (count unchanged), so it is delivered again with DeliveryCount + 1; a taker that died after finishing its work but
///   before its Ack's store causes the only duplicate. Retaker between its raise and its CAS: the record is still
///   Released(n) with Deliveries n + 1; the next retaker raises to n + 1 again (no change). Releaser before its CAS:
///   nothing; after its CAS but before the counter add: the record is deliverable, and the next dead-taker scan of a
///   waiting consumer (before each sleep slice) finds it even though the counter did not move. Dead-lettering (a
///   retake that finds n at MaxDeliveries; ShmQueue.Acknowledged.cs) enqueues a copy to the dead-letter queue, then
///   acks: killed between the two, the record is released again and may reach the dead-letter queue twice.
/// Order: first deliveries keep the ring's order (per producer, FIFO); a redelivered record is found behind ReadPosition,
///   so it is taken after records that were first delivered while it was held (oldest released first among redeliveries).
/// </remarks>
internal sealed unsafe partial class MpmcRing
{
    /// <summary>This process's identity word (a Reader word of a record it took).</summary>
    public ulong Identity => _identity;

    /// <summary>True when the creator made this queue acknowledged (fixed for its life).</summary>
    public bool IsAcknowledged => (*(int*)(_control + FeaturesOffset) & FeatureAcknowledged) != 0;

    /// <summary>The creator's MaxDeliveries: 0 when unlimited.</summary>
    public int MaxDeliveries => *(int*)(_control + MaxDeliveriesOffset);

    /// <summary>How many releases have been announced (acquire): changes when a record became deliverable again.</summary>
    public long Redeliveries => MappedAtomics.ReadInt64Acquire(_control + RedeliveriesOffset);

    /// <summary>
    /// Takes the oldest released record behind ReadPosition (at most <paramref name="maxLength"/> bytes long). False when
    /// none was found; <paramref name="complete"/> then says the scan saw every record (else something moved under it).
    /// </summary>
    public bool TryTakeReleased(out ReadLease lease, out int deliveryCount, int maxLength, out bool complete)
    {
        var visitor = new RetakeVisitor(this, maxLength);
        complete = ScanRecords(ref visitor, toTail: false);
        lease = visitor.Lease;
        deliveryCount = visitor.DeliveryCount;
        return visitor.DeliveryCount > 0;
    }

    /// <summary>Acks a record this process took: false when it is no longer ours (then nothing is changed).</summary>
    public bool TryAck(in ReadLease lease)
    {
        if (!IsHeld(lease))
        {
            return false;
        }

        EndRead(lease);
        return true;
    }

    /// <summary>True while the record of <paramref name="lease"/> is still taken by this process and unsettled (State committed for its position).</summary>
    public bool IsHeld(in ReadLease lease) =>
        (ulong)MappedAtomics.ReadInt64Acquire(lease.Record + StateOffset) == StateWord(lease.Position, StateCommitted)
        && (ulong)MappedAtomics.ReadInt64Acquire(lease.Record + ReaderOffset) == _identity;

    /// <summary>
    /// Makes the record at <paramref name="position"/>, taken by <paramref name="taker"/> (this process for a Nack, or one
    /// proved dead), deliverable again. Returns the deliveries it had, or 0 when it was not so taken any more.
    /// </summary>
    public int TryRelease(long position, ulong taker)
    {
        byte* record = _data + (position & _offsetMask);
        if ((ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset) != StateWord(position, StateCommitted)
            || (ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset) != taker)
        {
            return 0;
        }

        // The taker raised Deliveries before its Reader CAS (full fence), and we read Reader above (acquire): we see its raise.
        int deliveries = Math.Max(1, DeliveriesOf((ulong)MappedAtomics.ReadInt64Acquire(record + ProducerIdentityOffset), position));
        if ((ulong)MappedAtomics.CompareExchangeInt64(record + ReaderOffset, (long)ReleasedWord(deliveries), (long)taker) != taker)
        {
            return 0;
        }

        // After the CAS: a consumer that sees the counter move and scans finds the record released.
        MappedAtomics.AddInt64(_control + RedeliveriesOffset, 1);
        return deliveries;
    }

    /// <summary>Releases every record held by a taker that <paramref name="isAlive"/> says is gone. Returns how many.</summary>
    public int ReleaseDeadTakers(Func<ulong, bool> isAlive)
    {
        var visitor = new DeadTakerVisitor(this, isAlive);
        ScanRecords(ref visitor, toTail: false);
        return visitor.Released;
    }

    /// <summary>Records behind ReadPosition that are taken (in flight) and that are released (waiting to be taken again). A snapshot.</summary>
    public (int InFlight, int Released) CountDeliveries()
    {
        var visitor = new CountVisitor();
        ScanRecords(ref visitor, toTail: false);
        return (visitor.InFlight, visitor.Released);
    }

    /// <summary>
    /// Messages between Head and Tail not yet finished (being written, queued, taken or released); -1 when records moved
    /// under the scan (ask again). Consumed and abandoned records are finished.
    /// </summary>
    public long CountUnfinished()
    {
        var visitor = new UnfinishedVisitor();
        return ScanRecords(ref visitor, toTail: true) ? visitor.Count : -1;
    }

    /// <summary>
    /// Raises the Deliveries word of the released record at <paramref name="position"/> to <paramref name="deliveries"/>.
    /// False when our view of the record is stale.
    /// </summary>
    private bool TryRaiseDeliveries(long position, byte* record, ulong released, int deliveries)
    {
        ulong want = DeliveriesWord(position, deliveries);
        while (true)
        {
            ulong seen = (ulong)MappedAtomics.ReadInt64Acquire(record + ProducerIdentityOffset);
            int current = DeliveriesOf(seen, position);
            if (current >= deliveries && (seen & WordTagDescriptor.TagMask) == WordTagDescriptor.DeliveriesTag)
            {
                return true;
            }

            // A count tagged for another position: either we are stale, or an earlier lap's stale retaker wrote it. Only
            // overwrite once Reader and State show the record is still the released one we saw.
            if (current < 0 && ((ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset) != released
                || (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset) != StateWord(position, StateCommitted)))
            {
                return false;
            }

            if ((ulong)MappedAtomics.CompareExchangeInt64(record + ProducerIdentityOffset, (long)want, (long)seen) == seen)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// Visits every message record from Head to ReadPosition (or Tail) with a consistent (State, Claim) pair. Returns true
    /// when it reached the end, false when the visitor stopped it or records moved in a way it cannot follow.
    /// </summary>
    private bool ScanRecords<TVisitor>(ref TVisitor visitor, bool toTail)
        where TVisitor : struct, IRecordVisitor
    {
        long position = MappedAtomics.ReadInt64Acquire(Head);
        long tail = MappedAtomics.ReadInt64Acquire(Tail);
        long limit = toTail ? tail : Math.Min(MappedAtomics.ReadInt64Acquire(ReadPosition), tail);
        for (long steps = _capacity / RecordAlignment + 1; position < limit && steps > 0; steps--)
        {
            long offset = position & _offsetMask;
            byte* record = _data + offset;

            // State, Claim, State: a Claim of a newer lap is only visible after that lap's State stamp (see StampFree and
            // TryClaim), so an unchanged State means the Claim belongs to it.
            ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset);
            ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + ClaimOffset);
            if (state >> 32 != PositionTag(position)
                || !TryDecodeClaim(claim, _capacity - offset, _maxMessageLength, out uint kind, out int length, out long size)
                || (ulong)MappedAtomics.ReadInt64Acquire(record + StateOffset) != state)
            {
                long head = MappedAtomics.ReadInt64Acquire(Head);
                if (head > position)
                {
                    position = head; // reclaimed under us: what lies before Head is finished
                    continue;
                }

                return false;
            }

            // Side-segment reference records (kind 3) are messages too: counted, released and retaken like any other, with
            // their kind in the lease (ShmQueue refuses to write them on an acknowledged queue; one from a peer is dropped there).
            if ((kind == KindMessage || kind == KindSide) && !visitor.Visit(position, record, (uint)state, length, kind))
            {
                return false;
            }

            position += size;
        }

        return position >= limit;
    }

    private interface IRecordVisitor
    {
        /// <summary>One message record of this lap; false stops the scan.</summary>
        bool Visit(long position, byte* record, uint state, int length, uint kind);
    }

    private struct RetakeVisitor(MpmcRing ring, int maxLength) : IRecordVisitor
    {
        public ReadLease Lease;
        public int DeliveryCount;

        public bool Visit(long position, byte* record, uint state, int length, uint kind)
        {
            if (state != StateCommitted || length > maxLength)
            {
                return true;
            }

            ulong reader = (ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset);
            if (!IsReleased(reader, out int deliveries) || !ring.TryRaiseDeliveries(position, record, reader, deliveries + 1))
            {
                return true;
            }

            if ((ulong)MappedAtomics.CompareExchangeInt64(record + ReaderOffset, (long)ring._identity, (long)reader) != reader)
            {
                return true; // another consumer took it
            }

            Lease = new ReadLease(position, record, length, kind);
            DeliveryCount = deliveries + 1;
            return false;
        }
    }

    private struct DeadTakerVisitor(MpmcRing ring, Func<ulong, bool> isAlive) : IRecordVisitor
    {
        private ulong _lastAlive;
        public int Released;

        public bool Visit(long position, byte* record, uint state, int length, uint kind)
        {
            if (state != StateCommitted)
            {
                return true;
            }

            ulong reader = (ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset);
            if (!WordTagDescriptor.IsIdentity(reader) || reader == ring._identity || reader == _lastAlive)
            {
                return true;
            }

            if (isAlive(reader))
            {
                _lastAlive = reader; // one /proc lookup per live taker in a row
                return true;
            }

            if (ring.TryRelease(position, reader) > 0)
            {
                Released++;
            }

            return true;
        }
    }

    private struct CountVisitor : IRecordVisitor
    {
        public int InFlight;
        public int Released;

        public bool Visit(long position, byte* record, uint state, int length, uint kind)
        {
            if (state == StateCommitted)
            {
                ulong reader = (ulong)MappedAtomics.ReadInt64Acquire(record + ReaderOffset);
                if (IsReleased(reader, out _))
                {
                    Released++;
                }
                else if (reader != FreeStamp(position))
                {
                    InFlight++;
                }
            }

            return true;
        }
    }

    private struct UnfinishedVisitor : IRecordVisitor
    {
        public long Count;

        public bool Visit(long position, byte* record, uint state, int length, uint kind)
        {
            if (state is StateWriting or StateCommitted)
            {
                Count++;
            }

            return true;
        }
    }
}
