using System.Runtime.CompilerServices;
using ShmIpc.Signaling;

namespace ShmIpc;

public sealed partial class ShmQueue
{
    private readonly Lock _pumpLock = new();
    private AsyncPump? _pump;

    /// <summary>
    /// Appends a message, completing when it is in the queue. Completes synchronously when there is space;
    /// otherwise one background thread per queue object serves every pending async call (no thread per call).
    /// Faults with <see cref="ShmQueueShutDownException"/> once the queue is shut down (also while it waits).
    /// </summary>
    public ValueTask EnqueueAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        CheckLength(message.Length);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        // The fast path must not overtake this object's own async enqueues still waiting in the pump.
        AsyncPump? pump = Volatile.Read(ref _pump);
        try
        {
            if ((pump is null || !pump.HasPendingEnqueues) && TryEnqueue(message.Span))
            {
                return ValueTask.CompletedTask;
            }
        }
        catch (ShmQueueShutDownException e)
        {
            return ValueTask.FromException(e);
        }

        return new ValueTask(GetPump().Add(new AsyncPump.Operation(message, cancellationToken)));
    }

    /// <summary>
    /// Takes the next message, completing synchronously when one is waiting. Faults with
    /// <see cref="ShmQueueShutDownException"/> once the queue is shut down and drained.
    /// </summary>
    public ValueTask<byte[]> DequeueAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<byte[]>(cancellationToken);
        }

        try
        {
            if (TryDequeue(out byte[]? message))
            {
                return new ValueTask<byte[]>(message);
            }
        }
        catch (ShmQueueShutDownException e)
        {
            return ValueTask.FromException<byte[]>(e);
        }

        var operation = new AsyncPump.Operation(default, cancellationToken, isDequeue: true);
        return new ValueTask<byte[]>(GetPump().AddDequeue(operation));
    }

    /// <summary>
    /// Messages as they arrive, until <paramref name="cancellationToken"/> is cancelled, the queue is disposed, or
    /// it is shut down and drained (then the sequence simply ends).
    /// </summary>
    public async IAsyncEnumerable<byte[]> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            byte[] message;
            try
            {
                message = await DequeueAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                yield break;
            }
            catch (ShmQueueShutDownException)
            {
                yield break;
            }

            yield return message;
        }
    }

    private AsyncPump GetPump()
    {
        ThrowIfDisposed();
        lock (_pumpLock)
        {
            ThrowIfDisposed();
            return _pump ??= new AsyncPump(this);
        }
    }

    private void StopAsyncPump()
    {
        AsyncPump? pump;
        lock (_pumpLock)
        {
            pump = _pump;
        }

        pump?.Stop();
    }

    /// <summary>
    /// Serves pending async calls of one queue object from one thread: tries them in arrival order,
    /// and when none can proceed sleeps on the queue's wait signal (the same spin-then-semaphore wait
    /// the blocking calls use), in short slices so calls of the other kind and new calls are noticed.
    /// </summary>
    private sealed class AsyncPump
    {
        private readonly ShmQueue _queue;
        private readonly object _gate = new();
        private readonly LinkedList<Operation> _dequeues = new();
        private readonly LinkedList<Operation> _enqueues = new();
        private readonly Thread _thread;
        private volatile bool _stopping;

        /// <summary>Which semaphore the pump sleeps on: 0 none, 1 data, 2 space.</summary>
        private volatile int _sleepingOn;
        private volatile int _pendingEnqueues;
        private int _turn;

        public AsyncPump(ShmQueue queue)
        {
            _queue = queue;
            _thread = new Thread(Run) { IsBackground = true, Name = $"ShmQueue async: {queue.Name}" };
            _thread.Start();
        }

        public bool HasPendingEnqueues => _pendingEnqueues > 0;

        public Task Add(Operation operation)
        {
            Register(_enqueues, operation);
            return operation.Completion.Task;
        }

        public Task<byte[]> AddDequeue(Operation operation)
        {
            Register(_dequeues, operation);
            return operation.Completion.Task;
        }

        private void Register(LinkedList<Operation> list, Operation operation)
        {
            // Before publishing: a cancellation that fires at once just marks the operation done.
            operation.RegisterCancellation();
            lock (_gate)
            {
                if (_stopping)
                {
                    operation.Fail(new ObjectDisposedException(nameof(ShmQueue), $"Queue '{_queue.Name}' has been disposed."));
                    return;
                }

                list.AddLast(operation);
                if (list == _enqueues)
                {
                    _pendingEnqueues = _enqueues.Count;
                }

                Monitor.PulseAll(_gate);
            }

            // If the pump sleeps on the other kind's semaphore, one post ends that sleep early (another
            // process may take it instead: a harmless spurious wakeup, and the pump's slice is short).
            int sleepingOn = _sleepingOn;
            if (list == _dequeues && sleepingOn == 2)
            {
                _queue._spaceSemaphore.Post();
            }
            else if (list == _enqueues && sleepingOn == 1)
            {
                _queue._dataSemaphore.Post();
            }
        }

        public void Stop()
        {
            _stopping = true;
            lock (_gate)
            {
                Monitor.PulseAll(_gate);
            }

            _queue._dataSemaphore.Post();
            _queue._spaceSemaphore.Post();
            _thread.Join(TimeSpan.FromSeconds(10));
        }

        private void Run()
        {
            try
            {
                while (!_stopping)
                {
                    bool hasDequeues, hasEnqueues;
                    lock (_gate)
                    {
                        Prune(_dequeues);
                        Prune(_enqueues);
                        _pendingEnqueues = _enqueues.Count;
                        hasDequeues = _dequeues.Count > 0;
                        hasEnqueues = _enqueues.Count > 0;
                        if (!hasDequeues && !hasEnqueues)
                        {
                            Monitor.Wait(_gate, 100);
                            continue;
                        }
                    }

                    bool progressed = (hasDequeues && ServeDequeues()) | (hasEnqueues && ServeEnqueues());
                    if (!progressed)
                    {
                        SleepUntilChange(hasDequeues, hasEnqueues);
                    }
                }
            }
            catch (ObjectDisposedException)
            {
            }
            catch (Exception e)
            {
                FailAll(e);
                return;
            }

            FailAll(new ObjectDisposedException(nameof(ShmQueue), $"Queue '{_queue.Name}' has been disposed."));
        }

        private bool ServeDequeues()
        {
            bool progressed = false;
            while (First(_dequeues) is { } operation)
            {
                lock (operation)
                {
                    if (!operation.IsDone)
                    {
                        try
                        {
                            if (!_queue.TryDequeue(out byte[]? message))
                            {
                                return progressed;
                            }

                            operation.Succeed(message);
                        }
                        catch (ShmQueueShutDownException e)
                        {
                            // Drained after a shutdown: this call and every later one fail the same way.
                            operation.Fail(e);
                        }
                    }
                }

                Remove(_dequeues, operation);
                progressed = true;
            }

            return progressed;
        }

        private bool ServeEnqueues()
        {
            bool progressed = false;
            while (First(_enqueues) is { } operation)
            {
                lock (operation)
                {
                    if (!operation.IsDone)
                    {
                        try
                        {
                            if (!_queue.TryEnqueue(operation.Message.Span))
                            {
                                return progressed;
                            }

                            operation.Succeed(null);
                        }
                        catch (ShmQueueShutDownException e)
                        {
                            operation.Fail(e);
                        }
                    }
                }

                Remove(_enqueues, operation);
                progressed = true;
            }

            return progressed;
        }

        private void SleepUntilChange(bool hasDequeues, bool hasEnqueues)
        {
            // Both kinds waiting: alternate in short slices. One kind: sleep up to one slice.
            long deadline = WaitSignal.DeadlineFrom(hasDequeues && hasEnqueues ? TimeSpan.FromMilliseconds(1) : _queue._wait.SleepSlice);
            _queue.Enter();
            try
            {
                // Both kinds waiting: alternate which signal to sleep on, so both get their dead-peer checks.
                if (hasDequeues && (!hasEnqueues || (++_turn & 1) == 0))
                {
                    _sleepingOn = 1;
                    var condition = new ReadableCondition(_queue);
                    _queue._dataSignal.Wait(ref condition, _queue._wait, deadline, CancellationToken.None);
                }
                else
                {
                    _sleepingOn = 2;
                    int length = First(_enqueues)?.Message.Length ?? 0;
                    var condition = new SpaceCondition(_queue, length);
                    _queue._spaceSignal.Wait(ref condition, _queue._wait, deadline, CancellationToken.None);
                }
            }
            finally
            {
                _sleepingOn = 0;
                _queue.Exit();
            }
        }

        private Operation? First(LinkedList<Operation> list)
        {
            lock (_gate)
            {
                return list.First?.Value;
            }
        }

        private void Remove(LinkedList<Operation> list, Operation operation)
        {
            lock (_gate)
            {
                list.Remove(operation);
                _pendingEnqueues = _enqueues.Count;
            }
        }

        private static void Prune(LinkedList<Operation> list)
        {
            for (LinkedListNode<Operation>? node = list.First; node is not null;)
            {
                LinkedListNode<Operation>? next = node.Next;
                if (node.Value.IsDone)
                {
                    list.Remove(node);
                }

                node = next;
            }
        }

        private void FailAll(Exception error)
        {
            lock (_gate)
            {
                _stopping = true;
                foreach (Operation operation in _dequeues.Concat(_enqueues))
                {
                    operation.Fail(error);
                }

                _dequeues.Clear();
                _enqueues.Clear();
            }
        }

        /// <summary>One pending async call. Completed under its own lock, so a cancellation and a success cannot both happen.</summary>
        internal sealed class Operation
        {
            private readonly CancellationToken _cancellationToken;
            private CancellationTokenRegistration _registration;

            public Operation(ReadOnlyMemory<byte> message, CancellationToken cancellationToken, bool isDequeue = false)
            {
                Message = message;
                _cancellationToken = cancellationToken;
                IsDequeue = isDequeue;
                Completion = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            public ReadOnlyMemory<byte> Message { get; }

            public bool IsDequeue { get; }

            public TaskCompletionSource<byte[]> Completion { get; }

            public bool IsDone { get; private set; }

            public void RegisterCancellation()
            {
                if (_cancellationToken.CanBeCanceled)
                {
                    _registration = _cancellationToken.Register(static state =>
                    {
                        var operation = (Operation)state!;
                        lock (operation)
                        {
                            if (!operation.IsDone)
                            {
                                operation.IsDone = true;
                                operation.Completion.TrySetCanceled(operation._cancellationToken);
                            }
                        }
                    }, this);
                }
            }

            /// <summary>Called under this operation's lock. Unregister, not Dispose: Dispose would wait for a
            /// cancellation callback that is itself waiting for this lock.</summary>
            public void Succeed(byte[]? message)
            {
                IsDone = true;
                Completion.TrySetResult(message!);
                _registration.Unregister();
            }

            public void Fail(Exception error)
            {
                lock (this)
                {
                    if (!IsDone)
                    {
                        IsDone = true;
                        Completion.TrySetException(error);
                    }
                }

                _registration.Unregister();
            }
        }
    }
}
