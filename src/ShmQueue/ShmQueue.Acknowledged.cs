using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using ShmIpc.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

// Acknowledged delivery (ShmQueueOptions.Acknowledged) and Join. The ring side and the crash table are in
// Ring/MpmcRing.Deliveries.cs; here: taking, settling, dead-lettering, finding dead takers, and waiting for the end.
public sealed unsafe partial class ShmQueue
{
    private LivenessThrottle _takerThrottle;
    private ShmQueue? _deadLetters;

    /// <summary>The Redeliveries counter at this object's last scan that found nothing to take again.</summary>
    private long _redeliveriesSeen;

    /// <summary>
    /// True when the queue was created with <see cref="ShmQueueOptions.Acknowledged"/>: <see cref="Take(CancellationToken)"/>
    /// hands out deliveries that must be acked, and the <c>Dequeue</c> family takes and acks in one step.
    /// </summary>
    public bool IsAcknowledged => _acknowledged;

    /// <summary>
    /// Messages taken and not yet settled (acked, nacked, or released after their taker died): a snapshot. Their ring
    /// space stays held, so a delivery held for long limits producers once the ring wraps around to it.
    /// <see cref="Count"/> counts the messages waiting to be taken (including released ones); this counts the taken.
    /// </summary>
    public int InFlight
    {
        get
        {
            Enter();
            try
            {
                return _ring.CountDeliveries().InFlight;
            }
            finally
            {
                Exit();
            }
        }
    }

    /// <summary>
    /// Messages put by any process and not yet finished (Python's <c>JoinableQueue</c> count, kept in shared memory). A
    /// message is finished when it is acked (acknowledged queue; <c>Ack</c> is Python's <c>task_done</c>), marked done by
    /// <see cref="TaskDone"/> (joinable queue, <see cref="ShmQueueOptions.Joinable"/>), or dequeued (plain queue). In an
    /// acknowledged or plain queue the count is read off the ring, so a process killed at any point cannot leave it wrong;
    /// a joinable queue keeps it in a shared counter (see <see cref="TaskDone"/> for what a killed process leaves). A snapshot.
    /// </summary>
    public long UnfinishedTasks
    {
        get
        {
            Enter();
            try
            {
                return CountUnfinishedTasks();
            }
            finally
            {
                Exit();
            }
        }
    }

    /// <summary>
    /// Waits until every message put so far, by any process, is finished (<see cref="UnfinishedTasks"/> is 0): Python's
    /// <c>JoinableQueue.join</c> on a joinable or acknowledged queue; "everything dequeued" on a plain one.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled first.</exception>
    /// <exception cref="ObjectDisposedException">This queue object was disposed (also by another thread during the wait).</exception>
    public void Join(CancellationToken cancellationToken = default) => JoinCore(long.MaxValue, cancellationToken);

    /// <summary>Waits up to <paramref name="timeout"/> until every message put so far is finished. False when the time ran out.</summary>
    public bool Join(TimeSpan timeout) => JoinCore(WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>Takes the next message for processing, waiting while the queue is empty. Settle it with Ack or Nack.</summary>
    /// <remarks>
    /// Released messages (nacked, or held by a consumer proved dead) come before new ones, oldest first; so a redelivered
    /// message may arrive after messages put later, while each producer's first deliveries keep its order. After a
    /// draining <see cref="Shutdown"/>, Take (and Dequeue) throws once nothing is queued and no delivery is held: while
    /// another consumer holds one, it waits, since that delivery may yet be nacked, or its taker die, and come back. A
    /// delivery held for ever by a live consumer therefore holds a draining Take for ever too; give it a timeout.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The queue is not acknowledged.</exception>
    /// <exception cref="OperationCanceledException">Cancelled before a message came; nothing was taken.</exception>
    /// <exception cref="ShmQueueShutDownException">The queue is shut down and drained.</exception>
    public ShmDelivery Take(CancellationToken cancellationToken = default)
    {
        TryTakeWaiting(long.MaxValue, cancellationToken, out ShmDelivery delivery);
        return delivery;
    }

    /// <summary>Takes the next message, waiting up to <paramref name="timeout"/>.</summary>
    /// <exception cref="TimeoutException">No message within the timeout.</exception>
    /// <inheritdoc cref="Take(CancellationToken)" path="/exception"/>
    public ShmDelivery Take(TimeSpan timeout) =>
        TryTake(out ShmDelivery delivery, timeout) ? delivery : ThrowEmptyTimeout<ShmDelivery>(timeout);

    /// <summary>Takes the next message without waiting. False when none is waiting.</summary>
    /// <inheritdoc cref="Take(CancellationToken)" path="/exception"/>
    public bool TryTake(out ShmDelivery delivery) =>
        TryTakeWaiting(WaitSignal.DeadlineFrom(TimeSpan.Zero), CancellationToken.None, out delivery);

    /// <summary>Takes the next message, waiting up to <paramref name="timeout"/>. False when the time ran out.</summary>
    /// <inheritdoc cref="Take(CancellationToken)" path="/exception"/>
    public bool TryTake(out ShmDelivery delivery, TimeSpan timeout) =>
        TryTakeWaiting(WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out delivery);

    // ---- Inside --------------------------------------------------------------------------------------

    private bool TryTakeWaiting(long deadline, CancellationToken cancellationToken, out ShmDelivery delivery)
    {
        if (!_acknowledged)
        {
            ThrowNotAcknowledged();
        }

        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            while (!TryTakeCore(out delivery))
            {
                var condition = new ReadableCondition(this);
                if (!_dataSignal.Wait(ref condition, TakeWait, deadline, cancellationToken))
                {
                    return TryTakeCore(out delivery);
                }
            }

            return true;
        }
        finally
        {
            Exit();
        }
    }

    private bool TryTakeCore(out ShmDelivery delivery)
    {
        delivery = default;
        if (_ring.ShutdownState == QueueDescriptor.ShutdownImmediate)
        {
            ThrowDequeueShutDown();
        }

        ReadStatus status = BeginReadAcknowledged(out ReadLease lease, out Blocker pending, out int count, int.MaxValue);
        if (status == ReadStatus.Empty && _ring.ShutdownState != QueueDescriptor.ShutdownNone)
        {
            status = ReadAfterShutdown(out lease, out pending, int.MaxValue);
            count = 1;
        }

        if (status != ReadStatus.Claimed)
        {
            if (status == ReadStatus.Pending)
            {
                NotePending(pending.Position);
            }

            return false;
        }

        if (lease.Kind == QueueDescriptor.KindSide)
        {
            DropSideRecord(lease);
        }

        delivery = new ShmDelivery(this, lease, count);
        return true;
    }

    /// <summary>
    /// The acknowledged read step: a record released since this object last looked comes first (oldest first), then the
    /// ring's next record. A released record past <see cref="ShmQueueOptions.MaxDeliveries"/> goes to the dead-letter queue.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReadStatus BeginReadAcknowledged(out ReadLease lease, out Blocker pending, out int deliveryCount, int maxLength)
    {
        while (true)
        {
            long redeliveries = _ring.Redeliveries;
            if (redeliveries != Volatile.Read(ref _redeliveriesSeen))
            {
                if (_ring.TryTakeReleased(out lease, out deliveryCount, maxLength, out bool complete))
                {
                    int max = _ring.MaxDeliveries;
                    if (max > 0 && deliveryCount > max)
                    {
                        DeadLetter(lease, deliveryCount - 1);
                        continue;
                    }

                    pending = default;
                    return ReadStatus.Claimed;
                }

                if (complete)
                {
                    Volatile.Write(ref _redeliveriesSeen, redeliveries);
                }
            }

            ReadStatus status = _ring.TryBeginRead(out lease, out pending, maxLength);
            deliveryCount = status == ReadStatus.Claimed ? _ring.FirstDeliveryCount(lease) : 1;
            return status;
        }
    }

    /// <summary>
    /// The drain of an acknowledged queue is not over while any delivery is taken (its taker may nack it or die) or
    /// released (a release whose Redeliveries add was lost to a kill is made visible here by forcing the next take to scan).
    /// False on other queues. A scan of the records behind ReadPosition: called only once the queue is shut down and empty.
    /// </summary>
    private bool DeliveriesOutstanding()
    {
        if (!_acknowledged || _ring.ShutdownState != QueueDescriptor.ShutdownDrain)
        {
            return false;
        }

        (int inFlight, int released) = _ring.CountDeliveries();
        if (released > 0)
        {
            Volatile.Write(ref _redeliveriesSeen, long.MinValue);
        }

        return inFlight > 0 || released > 0;
    }

    /// <summary>Something was released that this object has not looked for yet.</summary>
    private bool HasRedeliveries() => _ring.Redeliveries != Volatile.Read(ref _redeliveriesSeen);

    internal void AckDelivery(in ShmDelivery delivery)
    {
        Enter();
        try
        {
            ReadLease lease = delivery.Lease;
            if (!_ring.TryAck(lease))
            {
                ThrowNotHeld(lease);
            }

            AfterRead();
            if (_ring.ShutdownState != QueueDescriptor.ShutdownNone)
            {
                // Consumers of a draining queue may wait for this delivery (DeliveriesOutstanding): tell them it is settled.
                _dataSignal.Notify();
            }

            ShmMetrics.RecordConsumed(ShmMetrics.KindQueue, _segment.Name, lease.Length);
        }
        finally
        {
            Exit();
        }
    }

    internal void NackDelivery(in ShmDelivery delivery, bool requeue)
    {
        Enter();
        try
        {
            ReadLease lease = delivery.Lease;
            if (!_ring.IsHeld(lease))
            {
                ThrowNotHeld(lease);
            }

            if (requeue)
            {
                Release(lease.Position);
            }
            else
            {
                DeadLetter(lease, delivery.DeliveryCount);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>ShmDelivery.Dispose: a Nack unless settled; nothing once this object is disposed.</summary>
    internal void ReleaseIfHeld(in ReadLease lease)
    {
        if (!_lifetime.TryEnter())
        {
            return;
        }

        try
        {
            if (_ring.IsHeld(lease))
            {
                Release(lease.Position);
            }
        }
        finally
        {
            Exit();
        }
    }

    internal bool IsHeld(in ReadLease lease)
    {
        Enter();
        try
        {
            return _ring.IsHeld(lease);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Span of a delivery: only while it is held (after an Ack the bytes may already belong to another message).</summary>
    internal void CheckHeld(in ReadLease lease)
    {
        if (!IsHeld(lease))
        {
            ThrowNotHeld(lease);
        }
    }

    /// <summary>
    /// The wait of a Take: sleep slices of at most 20 ms (as a cancellable wait's), so a waiting consumer looks for dead
    /// takers at least that often and a killed consumer's message is taken again within about one such slice.
    /// </summary>
    private ShmWaitStrategy TakeWait => _takeWait ??= _wait.SleepSlice > s_takeSlice ? _wait with { SleepSlice = s_takeSlice } : _wait;

    private ShmWaitStrategy? _takeWait;

    private static readonly TimeSpan s_takeSlice = TimeSpan.FromMilliseconds(20);

    [DoesNotReturn]
    private void ThrowNotHeld(in ReadLease lease) =>
        throw new InvalidOperationException($"Queue '{Name}': the delivery at position {lease.Position} was already acked or nacked.");

    private void Release(long position)
    {
        if (_ring.TryRelease(position, _ring.Identity) > 0)
        {
            _dataSignal.Notify();
        }
    }

    /// <summary>
    /// Copies a record this process holds to the dead-letter queue with its delivery count, then acks it (killed between:
    /// it may go there twice). The dead-letter consumer's first Take reports that count as its DeliveryCount.
    /// </summary>
    private void DeadLetter(in ReadLease lease, int deliveries)
    {
        ShmQueue deadLetters = DeadLetters();
        if (!deadLetters.TryEnqueueDeadLetter(lease.Payload, deliveries))
        {
            _logger.LogWarning("Queue {Name}: the dead-letter queue {DeadLetters} is full; the message at position {Position} stays in the queue.",
                Name, deadLetters.Name, lease.Position);
            Release(lease.Position);
            return;
        }

        _logger.LogWarning("Queue {Name}: a message was taken {Deliveries} times without an ack; it went to {DeadLetters}.", Name, deliveries, deadLetters.Name);
        _ring.EndRead(lease);
        AfterRead();
    }

    /// <summary>
    /// Enqueues a dead letter without waiting: into an acknowledged queue with its Deliveries word set to
    /// <paramref name="deliveries"/> (MpmcRing.TryWrite); into a plain one (made by an older build, or by the user) as any message.
    /// </summary>
    private bool TryEnqueueDeadLetter(ReadOnlySpan<byte> message, int deliveries)
    {
        if (!_acknowledged || message.Length > _ring.MaxMessageLength)
        {
            return TryEnqueue(message);
        }

        Enter();
        try
        {
            return TryEnqueueCore(message, QueueDescriptor.KindMessage, deliveries);
        }
        finally
        {
            Exit();
        }
    }

    private ShmQueue DeadLetters()
    {
        ShmQueue? queue = Volatile.Read(ref _deadLetters);
        if (queue is not null)
        {
            return queue;
        }

        var options = new ShmQueueOptions
        {
            Capacity = Capacity,
            MaxMessageLength = MaxMessageLength,
            Acknowledged = true, // so each dead letter carries its delivery count to the dead-letter consumer's Take
            UnlinkOnDispose = false,
            Logger = _deadLetterOptions.Logger,
            GroupAccess = _deadLetterOptions.GroupAccess,
        };
        queue = OpenOrCreate(_deadLetterOptions.DeadLetterQueue ?? Name + ".dead", options);
        ShmQueue? raced = Interlocked.CompareExchange(ref _deadLetters, queue, null);
        if (raced is not null)
        {
            queue.Dispose();
            return raced;
        }

        return queue;
    }

    /// <summary>Before a consumer sleeps (and when a producer finds the ring full): release what dead takers held.</summary>
    private void ReleaseDeadTakers(bool throttled)
    {
        if (!_acknowledged || (throttled && !_takerThrottle.TryBegin()))
        {
            return;
        }

        int released = _ring.ReleaseDeadTakers(IsAlive);
        if (released > 0)
        {
            _logger.LogWarning("Queue {Name}: {Count} message(s) held by dead consumers will be delivered again.", Name, released);
            ShmMetrics.RecordDeadPeer(ShmMetrics.KindQueue, Name, lost: 0);
            _dataSignal.Notify();
        }
    }

    /// <summary>The ring's count; a scan that records moved under is retried (a reclaim racing it), a few times at most.</summary>
    private long CountUnfinished()
    {
        for (int attempt = 0; ; attempt++)
        {
            long count = _ring.CountUnfinished();
            if (count >= 0 || attempt == 100)
            {
                return count >= 0 ? count : throw new ShmCorruptionException(Name, -1, "the records between head and tail cannot be walked");
            }
        }
    }

    private bool JoinCore(long deadline, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            var condition = new JoinCondition(this);
            return _spaceSignal.Wait(ref condition, _wait, deadline, cancellationToken);
        }
        finally
        {
            Exit();
        }
    }

    [DoesNotReturn]
    private void ThrowNotAcknowledged() =>
        throw new InvalidOperationException($"Queue '{Name}' is not acknowledged: create it with ShmQueueOptions.Acknowledged = true to take and ack, or use Dequeue.");

    /// <summary>Join sleeps on the space signal: every ack or dequeue notifies it (AfterRead), and so does the TaskDone that reaches 0.</summary>
    private readonly struct JoinCondition(ShmQueue queue) : IWaitCondition
    {
        public bool IsSatisfied()
        {
            queue.ThrowIfDisposed();
            return queue.CountUnfinishedTasks() == 0;
        }

        public void BeforeSleep()
        {
            queue.ThrowIfDisposed();
            queue.ReleaseDeadTakers(throttled: true);
        }
    }
}

// The async members live outside the unsafe part: an unsafe context cannot await.
public sealed partial class ShmQueue
{
    /// <summary>Takes the next message, completing when one is there (synchronously when one is waiting).</summary>
    /// <inheritdoc cref="Take(CancellationToken)" path="/exception"/>
    public async ValueTask<ShmDelivery> TakeAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (TryTake(out ShmDelivery delivery))
            {
                return delivery;
            }

            await WaitToDequeueAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
