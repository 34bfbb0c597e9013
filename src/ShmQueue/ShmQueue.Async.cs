using System.Threading.Channels;
using ShmIpc.Async;
using ShmIpc.Signaling;

namespace ShmIpc;

public sealed partial class ShmQueue
{
    private QueueDequeueWaits? _dequeueWaits;
    private QueueEnqueueWaits? _enqueueWaits;

    /// <summary>
    /// Appends a message, completing when it is in the queue. Completes synchronously when there is space; otherwise the
    /// call waits without a thread of its own, on the process's few async waiter threads (see <see cref="DequeueAsync"/>).
    /// Async enqueues of one queue object complete in the order they were made. Faults with
    /// <see cref="ShmQueueShutDownException"/> once the queue is shut down (also while it waits).
    /// </summary>
    public ValueTask EnqueueAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        CheckLength(message.Length);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        QueueEnqueueWaits waits = EnqueueWaits();
        try
        {
            // The fast path must not overtake this object's own async enqueues still waiting.
            if (!waits.HasPending && TryEnqueue(message.Span))
            {
                return ValueTask.CompletedTask;
            }
        }
        catch (Exception e) when (e is ShmQueueShutDownException or ObjectDisposedException)
        {
            return ValueTask.FromException(e);
        }

        AsyncOperation<bool> operation = waits.Enqueues.Rent();
        operation.Kind = QueueEnqueueWaits.Enqueue;
        operation.Message = message;
        ValueTask task = operation.AsValueTask();
        waits.Add(operation, cancellationToken);
        return task;
    }

    /// <summary>
    /// Takes the next message, completing synchronously when one is waiting. Otherwise the call waits without a thread of
    /// its own: a few waiter threads per process sleep on the semaphores of every pending call (futex_waitv on Linux) and
    /// complete it when a message arrives; the continuation runs on the thread pool. Faults with
    /// <see cref="ShmQueueShutDownException"/> once the queue is shut down and drained, with
    /// <see cref="ObjectDisposedException"/> when it is disposed meanwhile; a cancellation is seen within milliseconds.
    /// </summary>
    public ValueTask<byte[]> DequeueAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<byte[]>(cancellationToken);
        }

        QueueDequeueWaits waits = DequeueWaits();
        try
        {
            if (!waits.HasPending && TryDequeue(out byte[]? message))
            {
                return new ValueTask<byte[]>(message);
            }
        }
        catch (Exception e) when (e is ShmQueueShutDownException or ObjectDisposedException)
        {
            return ValueTask.FromException<byte[]>(e);
        }

        AsyncOperation<byte[]> operation = waits.Messages.Rent();
        operation.Kind = QueueDequeueWaits.Dequeue;
        ValueTask<byte[]> task = operation.AsValueTaskOfT();
        waits.Add(operation, cancellationToken);
        return task;
    }

    /// <summary>
    /// Messages as they arrive, until <paramref name="cancellationToken"/> is cancelled, the queue is disposed, or
    /// it is shut down and drained (then the sequence simply ends).
    /// </summary>
    public IAsyncEnumerable<byte[]> ReadAllAsync(CancellationToken cancellationToken = default) =>
        AsyncWaitQueue.ReadAll(DequeueAsync, static e => e is ObjectDisposedException or ShmQueueShutDownException, cancellationToken);

    /// <summary>
    /// The queue's consuming side as a <see cref="ChannelReader{T}"/> of raw messages, for code written against
    /// System.Threading.Channels: <see cref="ChannelReader{T}.WaitToReadAsync"/> waits like <see cref="DequeueAsync"/> (without
    /// consuming) and returns false once the queue is shut down and drained; <see cref="ChannelReader{T}.TryRead"/> never
    /// blocks. Each call returns a new adapter over this queue object.
    /// </summary>
    public ChannelReader<byte[]> AsChannelReader() => new ShmChannelReader<byte[]>(new QueueChannelEndpoint(this), serializer: null);

    /// <summary>
    /// The queue's producing side as a <see cref="ChannelWriter{T}"/> of raw messages: <see cref="ChannelWriter{T}.TryWrite"/>
    /// never blocks, <see cref="ChannelWriter{T}.WaitToWriteAsync"/> waits for space and returns false once the queue is shut
    /// down, <see cref="ChannelWriter{T}.TryComplete"/> shuts the queue down (readers drain what is in it).
    /// </summary>
    public ChannelWriter<byte[]> AsChannelWriter() => new ShmChannelWriter<byte[]>(new QueueChannelEndpoint(this), serializer: null);

    internal ValueTask<bool> WaitToDequeueAsync(CancellationToken cancellationToken) =>
        DequeueWaits().WaitAsync(DequeueWaits().Flags, QueueDequeueWaits.WaitToRead, cancellationToken);

    internal ValueTask<bool> WaitToEnqueueAsync(CancellationToken cancellationToken) =>
        EnqueueWaits().WaitAsync(EnqueueWaits().Flags, QueueEnqueueWaits.WaitToWrite, cancellationToken);

    private QueueDequeueWaits DequeueWaits()
    {
        ThrowIfDisposed();
        return Volatile.Read(ref _dequeueWaits) ?? Created(ref _dequeueWaits, new QueueDequeueWaits(this));
    }

    private QueueEnqueueWaits EnqueueWaits()
    {
        ThrowIfDisposed();
        return Volatile.Read(ref _enqueueWaits) ?? Created(ref _enqueueWaits, new QueueEnqueueWaits(this));
    }

    private static T Created<T>(ref T? field, T created)
        where T : class => Interlocked.CompareExchange(ref field, created, null) ?? created;

    /// <summary>The hook of <see cref="Dispose"/>: pending async calls fault with ObjectDisposedException and leave their guards.</summary>
    private void StopAsyncPump()
    {
        TimeSpan timeout = TimeSpan.FromSeconds(10);
        Volatile.Read(ref _dequeueWaits)?.StopAndWait(timeout);
        Volatile.Read(ref _enqueueWaits)?.StopAndWait(timeout);
        Volatile.Read(ref _joinWaits)?.StopAndWait(timeout);
    }

    /// <summary>The pending async calls of one kind on this queue object; the owner's guard is <see cref="Enter"/>.</summary>
    private abstract class QueueWaits(ShmQueue queue, WaitSignal signal) : AsyncWaitQueue
    {
        public readonly OperationCache<bool> Flags = new();

        protected ShmQueue Queue => queue;

        protected override WaitSignal Signal => signal;

        protected override void EnterOwner() => queue.Enter();

        protected override void ExitOwner() => queue.Exit();
    }

    /// <summary>Dequeues and waits to read (channel adapter), in arrival order; they sleep on the data signal.</summary>
    private sealed class QueueDequeueWaits(ShmQueue queue) : QueueWaits(queue, queue._dataSignal)
    {
        public const int Dequeue = 0;
        public const int WaitToRead = 1;

        public readonly OperationCache<byte[]> Messages = new();

        protected override bool TryServe(AsyncOperation operation, bool checkPeers)
        {
            ShmQueue queue = Queue;
            queue.ThrowIfDisposed();
            if (checkPeers)
            {
                queue.ResolvePendingRecord();
                queue.ReleaseDeadTakers(throttled: true); // TakeAsync: a dead taker's message comes back
            }

            if (operation.Kind == WaitToRead)
            {
                if (!queue.IsReadableOrOver())
                {
                    return false;
                }

                // Shut down and empty: nothing will ever be read.
                bool over = queue._ring.ShutdownState != Layout.QueueDescriptor.ShutdownNone && !queue._ring.HasReadable();
                ((AsyncOperation<bool>)operation).StageResult(!over);
                return true;
            }

            if (!queue.TryDequeue(out byte[]? message))
            {
                return false;
            }

            ((AsyncOperation<byte[]>)operation).StageResult(message);
            return true;
        }
    }

    /// <summary>Enqueues and waits to write (channel adapter), in arrival order; they sleep on the space signal.</summary>
    private sealed class QueueEnqueueWaits(ShmQueue queue) : QueueWaits(queue, queue._spaceSignal)
    {
        public const int Enqueue = 0;
        public const int WaitToWrite = 1;

        public readonly OperationCache<bool> Enqueues = new();

        protected override bool TryServe(AsyncOperation operation, bool checkPeers)
        {
            ShmQueue queue = Queue;
            queue.ThrowIfDisposed();
            if (checkPeers)
            {
                queue.RepairReclaim();
            }

            if (operation.Kind == WaitToWrite)
            {
                var condition = new SpaceCondition(queue, 0);
                if (!condition.IsSatisfied())
                {
                    return false;
                }

                ((AsyncOperation<bool>)operation).StageResult(queue._ring.ShutdownState == Layout.QueueDescriptor.ShutdownNone);
                return true;
            }

            return queue.TryEnqueue(operation.Message.Span);
        }
    }
}
