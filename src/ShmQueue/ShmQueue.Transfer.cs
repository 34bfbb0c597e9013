using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ShmIpc.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Ring;
using ShmIpc.Signaling;
using ShmIpc.Timing;

namespace ShmIpc;

// How a message goes in and out of the ring under the public calls: one write path and one read path, each
// generic over nothing or over a struct reader (IPayloadReader), spinning then sleeping on the queue's WaitSignals.
public sealed unsafe partial class ShmQueue
{
    /// <summary>Writes the message: true when written, false when the ring is full; throws when the queue is shut down.</summary>
    /// <param name="message">The payload.</param>
    /// <param name="kind">Message, or a side-segment reference.</param>
    /// <param name="deliveries">The Deliveries word of a dead letter (<see cref="MpmcRing.TryWrite"/>).</param>
    /// <param name="batched">
    /// The caller waits when this returns false: on a full ring, reclaim only once consumers have finished a batch
    /// (<see cref="TryEnqueueAfterBatch"/>). False: reclaim whatever they finished (a call that must not report "full" while
    /// finished records would make room).
    /// </param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryEnqueueCore(ReadOnlySpan<byte> message, uint kind = QueueDescriptor.KindMessage, int deliveries = 0, bool batched = false)
    {
        WriteStatus status = _ring.TryWrite(message, kind, deliveries);
        if (status == WriteStatus.Full)
        {
            status = batched ? TryEnqueueAfterBatch(message, kind, deliveries) : TryEnqueueAfterReclaim(message, kind, deliveries);
        }

        if (status != WriteStatus.Written)
        {
            if (status == WriteStatus.Full)
            {
                return false;
            }

            ThrowEnqueueShutDown(status);
        }

        _dataSignal.NotifyOne(); // one message: one sleeper (WaitSignal.NotifyOne)
        CountSent(message.Length);
        return true;
    }

    /// <summary>The ring looked full: reclaim what consumers have finished, repair after dead peers if it stays full, retry once.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private WriteStatus TryEnqueueAfterReclaim(ReadOnlySpan<byte> message, uint kind, int deliveries)
    {
        if (!Reclaim())
        {
            // Callers that never block must still get past a dead reader or reclaimer: look, at a bounded rate.
            if (!_repairThrottle.TryBegin())
            {
                return WriteStatus.Full;
            }

            RepairReclaim();
        }

        return _ring.TryWrite(message, kind, deliveries);
    }

    /// <summary>The most a waiting producer lets consumers finish before it reclaims a full ring (<see cref="_reclaimBatch"/>).</summary>
    internal const long ReclaimBatchLimit = 64 * 1024;

    /// <summary>The finished bytes a waiting producer of a <paramref name="length"/>-byte message holds out for: a batch, or its record if larger.</summary>
    private long ReclaimBatchFor(int length) => Math.Max(_reclaimBatch, QueueDescriptor.RecordSize(length));

    /// <summary>
    /// The ring looked full to a producer that will wait if this fails: reclaim and retry only when consumers have finished at
    /// least <see cref="_reclaimBatch"/> bytes (or this record's size, if larger); else report full, and the wait
    /// (<see cref="SpaceCondition"/>) spins for a batch for at most <see cref="SpaceCondition.BatchWait"/>, then takes
    /// whatever there is (consumers too slow to finish a batch that soon get the record-by-record reclaim of before, and
    /// the producer never reaches the pre-sleep repair for want of a batch).
    /// </summary>
    /// <remarks>
    /// Why: a producer that outruns its consumers finds the ring full at every message. Reclaiming each record as soon as it
    /// is consumed keeps the producer one record behind the consumer: it reads ReadPosition (the line every dequeue CASes)
    /// and re-stamps the lines the consumer has just left, at every message, so those lines cross between the cores twice
    /// a message. The best C rings publish their consumer position once per eighth of the ring for the same reason
    /// (bench/native/best_spsc.c). Waiting costs the producer nothing it could use (the ring is full), and only while it
    /// spins: before it sleeps, the condition accepts any finished record, so a consumer that stops after one message
    /// still lets a sleeping producer in. On a machine with more runnable threads than cores (<see cref="MachineLoad"/>) the
    /// producer does not wait for a batch: its spin would take the core from the consumers it waits for.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private WriteStatus TryEnqueueAfterBatch(ReadOnlySpan<byte> message, uint kind, int deliveries)
    {
        if (_ring.ReclaimableBytes() < ReclaimBatchFor(message.Length)
            && !MachineLoad.IsOversubscribed(Stopwatch.GetTimestamp()))
        {
            return WriteStatus.Full;
        }

        Reclaim();
        return _ring.TryWrite(message, kind, deliveries);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    [DoesNotReturn]
    private void ThrowEnqueueShutDown(WriteStatus status)
    {
        if (status == WriteStatus.ShutDownAbandoned)
        {
            // Consumers may wait for the record we claimed and then abandoned: it is skippable now.
            _dataSignal.Notify();
        }

        throw new ShmQueueShutDownException(Name, "nothing more can be enqueued; the message was not written.");
    }

    private bool EnqueueWaiting(ReadOnlySpan<byte> message, long deadline, CancellationToken cancellationToken)
    {
        if (message.Length > _ring.MaxMessageLength)
        {
            return EnqueueLarge(message, deadline, cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();
        ThreadCallSlot? call = EnterCall(ref _recentWriteSlot, reads: false);
        try
        {
            return WriteWaiting(message, QueueDescriptor.KindMessage, deadline, cancellationToken);
        }
        finally
        {
            ExitCall(call);
        }
    }

    /// <summary>Writes a record of <paramref name="kind"/>, waiting for space until <paramref name="deadline"/> (inside Enter/Exit).</summary>
    /// <remarks>
    /// The first attempt inline, the wait out of line (<see cref="WriteAfterWait"/>): a message that finds room (the common
    /// case) runs no wait set-up, no wait condition's zeroed frame. A call that will not wait (a zero timeout) reclaims any
    /// finished record at once, as TryEnqueue does.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool WriteWaiting(ReadOnlySpan<byte> record, uint kind, long deadline, CancellationToken cancellationToken) =>
        TryEnqueueCore(record, kind, batched: deadline != Deadline.Immediate) || WriteAfterWait(record, kind, deadline, cancellationToken);

    /// <summary>The ring was full: wait for space and write, until <paramref name="deadline"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WriteAfterWait(ReadOnlySpan<byte> record, uint kind, long deadline, CancellationToken cancellationToken)
    {
        bool batched = deadline != Deadline.Immediate;
        do
        {
            // Batched only the first time: a producer that woke and lost the space to another takes what it finds.
            var condition = new SpaceCondition(this, record.Length, batched);
            batched = false;
            if (!_spaceSignal.Wait(ref condition, _wait, deadline, cancellationToken))
            {
                return TryEnqueueCore(record, kind);
            }
        }
        while (!TryEnqueueCore(record, kind));

        return true;
    }


    private bool TryReadNoWait<TReader, TResult>(ref TReader reader, [MaybeNullWhen(false)] out TResult result)
        where TReader : struct, IPayloadReader<TResult>
    {
        ThreadCallSlot? call = EnterCall(ref _recentReadSlot, reads: true);
        try
        {
            return TryReadCore(ref reader, out result);
        }
        finally
        {
            ExitCall(call);
        }
    }

    /// <summary>
    /// Takes a message, waiting until <paramref name="deadline"/>; with <see cref="Deadline.Deferred"/>, until
    /// <paramref name="timeout"/> from the first failed look (checked by <see cref="Deadline.CheckTimeout"/> beforehand): a call
    /// that finds its message reads no clock.
    /// </summary>
    private bool TryReadWaiting<TReader, TResult>(ref TReader reader, long deadline, CancellationToken cancellationToken, [MaybeNullWhen(false)] out TResult result,
        TimeSpan timeout = default)
        where TReader : struct, IPayloadReader<TResult>
    {
        cancellationToken.ThrowIfCancellationRequested();
        ThreadCallSlot? call = EnterCall(ref _recentReadSlot, reads: true);
        try
        {
            // The first look inline, the wait out of line: a dequeue that finds its message sets up no wait.
            return TryReadCore(ref reader, out result) || ReadAfterWait(ref reader, deadline, timeout, out result, cancellationToken);
        }
        finally
        {
            ExitCall(call);
        }
    }

    /// <summary>The first look found nothing: wait and look again until <paramref name="deadline"/> (inside the call's guard).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool ReadAfterWait<TReader, TResult>(ref TReader reader, long deadline, TimeSpan timeout, [MaybeNullWhen(false)] out TResult result,
        CancellationToken cancellationToken)
        where TReader : struct, IPayloadReader<TResult>
    {
        if (deadline == Deadline.Deferred)
        {
            deadline = Deadline.From(timeout); // only a call that has to wait reads the clock
        }

        do
        {
            var condition = new ReadableCondition(this);
            if (!_dataSignal.Wait(ref condition, _wait, deadline, cancellationToken))
            {
                return TryReadCore(ref reader, out result);
            }
        }
        while (!TryReadCore(ref reader, out result));

        return true;
    }

    /// <summary>Takes a message: true when read, false when none is ready; throws when the queue is shut down and drained.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryReadCore<TReader, TResult>(ref TReader reader, [MaybeNullWhen(false)] out TResult result)
        where TReader : struct, IPayloadReader<TResult>
    {
        if (_ring.ShutdownState == QueueDescriptor.ShutdownImmediate)
        {
            ThrowDequeueShutDown();
        }

        // A plain queue's take leaves ReadPosition to EndReadAndAdvance (one locked instruction fewer per message: see there).
        bool advanceLater = !_acknowledged;
        ReadStatus status = _acknowledged
            ? BeginReadAcknowledged(out ReadLease lease, out Blocker pending, out _, reader.MaxLength)
            : _ring.TryBeginRead(out lease, out pending, reader.MaxLength, advanceLater: true);
        if (status == ReadStatus.Empty && _ring.ShutdownState != QueueDescriptor.ShutdownNone)
        {
            status = ReadAfterShutdown(out lease, out pending, reader.MaxLength, advanceLater);
        }

        if (status != ReadStatus.Claimed)
        {
            if (status == ReadStatus.TooLarge)
            {
                _dataSignal.Notify(); // the wake we may have used goes on to consumers with room for it
                ThrowTooLarge(pending.Pid, reader.MaxLength, "destination");
            }

            if (status == ReadStatus.Pending)
            {
                NotePending(pending.Position);
            }

            result = default;
            return false;
        }

        try
        {
            result = ReadPayload<TReader, TResult>(ref reader, lease);
        }
        finally
        {
            if (advanceLater)
            {
                _ring.EndReadAndAdvance(lease);
            }
            else
            {
                _ring.EndRead(lease);
            }

            AfterRead(fenced: advanceLater);
        }

        CountConsumed(lease.Length);
        return true;
    }

    /// <summary>This process's instruments, kept here so that a message tests them through one field (ShmMetrics.Current).</summary>
    private ShmMetrics.Instruments? _metrics;

    /// <summary>Counts a message enqueued: with no listener, a field load and the instruments' Enabled tests, nothing else.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountSent(int bytes)
    {
        if ((_metrics ?? LoadMetrics()) is { SentEnabled: true })
        {
            ShmMetrics.RecordSent(ShmMetrics.KindQueue, _segment.Name, bytes);
        }
    }

    /// <summary>Counts a message dequeued, as <see cref="CountSent"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountConsumed(int bytes)
    {
        if ((_metrics ?? LoadMetrics()) is { ConsumedEnabled: true })
        {
            ShmMetrics.RecordConsumed(ShmMetrics.KindQueue, _segment.Name, bytes);
        }
    }

    /// <summary>The instruments once they exist (null in a child that defers them: it asks again at the next message).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ShmMetrics.Instruments? LoadMetrics() => _metrics = ShmMetrics.Current();

    /// <summary>
    /// The ring looked empty and the queue is shut down. Fence, then look once more: a record claimed before the
    /// Shutdown word was set is visible now, and any claimed after it gets abandoned (MpmcRing's remarks). Still
    /// empty: the queue is drained for good.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReadStatus ReadAfterShutdown(out ReadLease lease, out Blocker pending, int maxLength, bool advanceLater = false)
    {
        Interlocked.MemoryBarrier();
        if (_ring.ShutdownState == QueueDescriptor.ShutdownImmediate)
        {
            ThrowDequeueShutDown();
        }

        ReadStatus status = _ring.TryBeginRead(out lease, out pending, maxLength, advanceLater);
        if (status == ReadStatus.Empty && !DeliveriesOutstanding())
        {
            ThrowDequeueShutDown();
        }

        return status;
    }

    [DoesNotReturn]
    private void ThrowDequeueShutDown() =>
        throw new ShmQueueShutDownException(Name, _ring.ShutdownState == QueueDescriptor.ShutdownImmediate
            ? "it was shut down immediately; what was queued is discarded."
            : "every message has been dequeued and no more can come.");

    /// <summary>
    /// A dequeue would not wait: a message is there (or the record at the read position needs a look), or the
    /// queue is shut down and nothing is still being written at the read position (drained: the dequeue throws).
    /// A peek: consumes nothing.
    /// </summary>
    private bool IsReadableOrOver()
    {
        if (_ring.HasReadable() || (_acknowledged && HasRedeliveries()))
        {
            return true;
        }

        int shutdown = _ring.ShutdownState;
        return shutdown == QueueDescriptor.ShutdownImmediate
            || (shutdown == QueueDescriptor.ShutdownDrain && !_ring.TryGetPending(out _) && !DeliveriesOutstanding());
    }
}
