using System.Diagnostics.CodeAnalysis;
using ShmIpc.Async;

namespace ShmIpc;

// Python's JoinableQueue (ShmQueueOptions.Joinable): TaskDone, the count behind Join and UnfinishedTasks, and JoinAsync
// for every kind of queue. The shared word and its crash table are in Ring/MpmcRing.Joinable.cs.
public sealed partial class ShmQueue
{
    private QueueJoinWaits? _joinWaits;

    /// <summary>
    /// True when the queue was created with <see cref="ShmQueueOptions.Joinable"/>: every message put stays unfinished
    /// until a <see cref="TaskDone"/> call marks it done.
    /// </summary>
    public bool IsJoinable => _ring.IsJoinable;

    /// <summary>
    /// Marks one message done (Python's <c>JoinableQueue.task_done</c>): any process may call it, typically a consumer
    /// after it has processed a message it dequeued. When the last unfinished message is marked done,
    /// <see cref="Join(CancellationToken)"/> returns in every process.
    /// </summary>
    /// <remarks>
    /// The count is a counter in the queue's shared memory: put adds 1 before the message can be dequeued, TaskDone
    /// subtracts 1. A consumer killed before its TaskDone leaves its message unfinished for good (as in Python): Join then
    /// waits until its timeout or cancellation. A producer killed inside a put, between counting the message and
    /// publishing it, leaves the count one too high the same way. For work that must survive killed consumers, use
    /// <see cref="ShmQueueOptions.Acknowledged"/> instead: its messages come back when their consumer dies, and its count
    /// is read off the ring. After an immediate <see cref="Shutdown"/>, the discarded messages are never dequeued, so
    /// they stay unfinished unless someone calls TaskDone for them.
    /// </remarks>
    /// <exception cref="InvalidOperationException">
    /// The queue is not joinable (an acknowledged queue: <see cref="ShmDelivery.Ack"/> is TaskDone), or TaskDone was called
    /// more times than messages were put (Python's <c>ValueError</c>; the count is left at 0).
    /// </exception>
    /// <exception cref="ObjectDisposedException">This queue object was disposed.</exception>
    public void TaskDone()
    {
        Enter();
        try
        {
            if (!_ring.IsJoinable)
            {
                ThrowNotJoinable();
            }

            if (!_ring.TryTaskDone(out long left))
            {
                throw new InvalidOperationException($"Queue '{Name}': TaskDone was called more times than messages were put (no message is unfinished).");
            }

            if (left == 0)
            {
                // After the CAS (a full fence): a Join that registered as a sleeper before it is posted (LAYOUT.md §4).
                _spaceSignal.Notify();
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Completes when every message put so far is finished (<see cref="Join(CancellationToken)"/>), without holding a
    /// thread: the call waits on the process's async waiter threads, registered as a sleeper on the signal that the last
    /// TaskDone, Ack or dequeue posts. Faults with <see cref="ObjectDisposedException"/> when the queue is disposed meanwhile.
    /// </summary>
    public Task JoinAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        QueueJoinWaits waits;
        try
        {
            if (JoinCore(Signaling.WaitSignal.DeadlineFrom(TimeSpan.Zero), CancellationToken.None))
            {
                return Task.CompletedTask;
            }

            waits = Volatile.Read(ref _joinWaits) ?? Created(ref _joinWaits, new QueueJoinWaits(this));
        }
        catch (ObjectDisposedException e)
        {
            return Task.FromException(e);
        }

        return waits.WaitAsync(waits.Flags, QueueJoinWaits.Join, cancellationToken).AsTask();
    }

    /// <summary>UnfinishedTasks and Join's condition: the joinable counter, or the count read off the ring.</summary>
    private long CountUnfinishedTasks() => _ring.IsJoinable ? _ring.Unfinished : CountUnfinished();

    [DoesNotReturn]
    private void ThrowNotJoinable() =>
        throw new InvalidOperationException(_acknowledged
            ? $"Queue '{Name}' is acknowledged: Ack each delivery instead of calling TaskDone (Ack is TaskDone)."
            : $"Queue '{Name}' is not joinable: create it with ShmQueueOptions.Joinable = true to call TaskDone.");

    /// <summary>Pending JoinAsync calls; they sleep on the space signal, which every ack, dequeue and last TaskDone posts.</summary>
    private sealed class QueueJoinWaits(ShmQueue queue) : QueueWaits(queue, queue._spaceSignal)
    {
        public const int Join = 0;

        protected override bool TryServe(AsyncOperation operation, bool checkPeers)
        {
            ShmQueue queue = Queue;
            queue.ThrowIfDisposed();
            if (checkPeers)
            {
                queue.ReleaseDeadTakers(throttled: true); // an acknowledged queue: a dead taker's message comes back
            }

            if (queue.CountUnfinishedTasks() != 0)
            {
                return false;
            }

            ((AsyncOperation<bool>)operation).StageResult(true);
            return true;
        }
    }
}
