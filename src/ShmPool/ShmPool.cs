using ShmIpc.Hosting;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

/// <summary>
/// A pool of worker processes that run static methods on arguments, the counterpart of Python's
/// <c>multiprocessing.Pool</c>. Each worker has its own duplex shared-memory pipe; the pool sends it chunks
/// of items and reads back results, keeping at most <see cref="ShmPoolOptions.MaxChunksInFlightPerWorker"/>
/// chunks per worker so a new Apply never waits behind a long queue.
/// </summary>
/// <remarks>
/// Faults stay where they happen: an exception in the function fails that item (as <see cref="ShmRemoteException"/>);
/// a worker that dies fails exactly the chunks it held (as <see cref="ShmWorkerCrashedException"/>, or sends them
/// again, see <see cref="ShmPoolOptions.TaskRetries"/>) and is replaced; callers of Map and Imap get the exception
/// rather than a hang. Workers end when the pool ends, and when the parent process dies.
/// The functions must be static methods or capture-free lambdas (see <see cref="ShmProcess"/>).
/// </remarks>
public sealed partial class ShmPool : IShmPool
{
    /// <summary>Starts a pool of <paramref name="processes"/> workers (0: <see cref="Environment.ProcessorCount"/>).</summary>
    /// <remarks>
    /// The constructor starts the first few worker processes (as many as there are cores, at least 2) and returns; the
    /// others start in the background, a few at a time, each as soon as an earlier one is ready, so that a large pool
    /// starts in time linear in its size and serves from its first ready worker: tasks submitted meanwhile go to the
    /// workers ready so far, and the others join as they become ready. <see cref="WaitForWorkers"/> waits until all are.
    /// </remarks>
    /// <exception cref="ArgumentException">An option is invalid, or the initializer is not a static method.</exception>
    public ShmPool(int processes = 0, ShmPoolOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(processes);
        StartTimeline.Mark("pool-constructor");
        _options = options ?? ShmPoolOptions.Default;
        _options.Validate();
        _noSpin = (_options.WaitStrategy ?? ShmWaitStrategy.Default) with { SpinDuration = TimeSpan.Zero };
        _serializer = _options.Serializer ?? ShmMessagePackSerializer.Instance;
        _serializerName = SerializerFactory.Describe(_serializer, nameof(options));
        _initializer = _options.Initializer is null ? null : TargetMethod.From(_options.Initializer, nameof(ShmPoolOptions.Initializer));
        if (_options.InitializerWithArgument is (Delegate target, Type argumentType, var argument))
        {
            // Serialized once: every worker (and every replacement) gets the same bytes.
            _initializer = TargetMethod.From(target, nameof(ShmPoolOptions.Initializer));
            var bytes = new System.Buffers.ArrayBufferWriter<byte>();
            _serializer.Serialize(argumentType, argument, bytes);
            _initializerArgument = bytes.WrittenMemory.ToArray();
        }
        ProcessCount = processes == 0 ? Environment.ProcessorCount : processes;
        _slots = new PoolWorker?[ProcessCount];
        _initMessage = BuildInitMessage();
        for (int slot = 0; slot < ProcessCount; slot++)
        {
            _unfilled.Enqueue(slot);
        }

        // The first start window here: a worker that cannot start fails the constructor. The start loop starts the rest.
        try
        {
            while (true)
            {
                int slot;
                lock (_lock)
                {
                    if (!TryTakeSlotToStart(out slot))
                    {
                        break;
                    }
                }

                StartWorker(slot);
            }
        }
        catch
        {
            lock (_lock)
            {
                TerminateLocked();
            }

            throw;
        }

        lock (_lock)
        {
            KickStarts();
        }

        if (_options.TaskTimeout is TimeSpan timeout)
        {
            TimeSpan period = TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerMillisecond * 100));
            _timeoutTimer = new Timer(static s => ((ShmPool)s!).EnforceTaskTimeout(), this, period, period);
        }
    }

    /// <summary>The number of worker processes the pool keeps.</summary>
    public int ProcessCount { get; }

    /// <summary>The process ids of the workers alive now (including retiring ones not yet gone).</summary>
    public IReadOnlyList<int> WorkerPids
    {
        get
        {
            lock (_lock)
            {
                return _live.Select(static w => w.Pid).ToArray();
            }
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until every one of the pool's <see cref="ProcessCount"/> workers is ready to
    /// take tasks (its process started and its initializer ran); false if <paramref name="timeout"/> passed first.
    /// </summary>
    /// <remarks>
    /// The pool does not need this: it serves from its first ready worker (see the constructor). It is for callers that
    /// want the whole pool warm before they start timing, or that must not go on before every initializer ran. A worker
    /// that dies later is replaced and is not ready again until its replacement is.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated, or its workers cannot start (the initializer threw, a process could not start).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public bool WaitForWorkers(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ThrowIfInvalidTimeout(timeout);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            lock (_lock)
            {
                ThrowIfNotTakingTasks();
                if (AllWorkersReady)
                {
                    return true;
                }

                // Reset under the lock: every Set comes under it too, after the change it announces.
                _workersChanged.Reset();
            }

            TimeSpan left = timeout == Timeout.InfiniteTimeSpan ? timeout : timeout - System.Diagnostics.Stopwatch.GetElapsedTime(started);
            if (left != Timeout.InfiniteTimeSpan && left <= TimeSpan.Zero)
            {
                return false;
            }

            _ = _workersChanged.Wait(left, cancellationToken);
        }
    }

    /// <summary>Stops the pool taking work; the workers finish what was submitted and exit. Then <see cref="Join()"/>.</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_state == PoolState.Running)
            {
                _state = PoolState.Closed;
                _workersChanged.Set();
                Pump();
            }
        }
    }

    /// <summary>Kills every worker now (SIGKILL); tasks not finished fail with <see cref="OperationCanceledException"/>. Then <see cref="Join()"/>.</summary>
    public void Terminate()
    {
        lock (_lock)
        {
            TerminateLocked();
        }
    }

    /// <summary>Waits, with no time limit, for every worker to end, after <see cref="Close"/> or <see cref="Terminate"/>.</summary>
    /// <exception cref="InvalidOperationException">Neither Close nor Terminate was called.</exception>
    public void Join() => JoinCore(Timeout.InfiniteTimeSpan, CancellationToken.None);

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for every worker to end, after <see cref="Close"/> or <see cref="Terminate"/>;
    /// false if <paramref name="timeout"/> passed first (as <see cref="Thread.Join(TimeSpan)"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">Neither Close nor Terminate was called.</exception>
    public bool Join(TimeSpan timeout)
    {
        ThrowIfInvalidTimeout(timeout);
        return JoinCore(timeout, CancellationToken.None);
    }

    /// <summary>Waits for every worker to end, after <see cref="Close"/> or <see cref="Terminate"/>, until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <remarks>A cancelled Join stops waiting; the workers go on ending, and Join may be called again.</remarks>
    /// <exception cref="InvalidOperationException">Neither Close nor Terminate was called.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void Join(CancellationToken cancellationToken) => JoinCore(Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Waits for every worker to end; <paramref name="timeout"/> null waits with no limit.</summary>
    /// <exception cref="InvalidOperationException">Neither Close nor Terminate was called.</exception>
    [Obsolete("Use Join() or Join(TimeSpan) (false when the timeout passed first), or Join(CancellationToken).")]
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Never)]
    public bool Join(TimeSpan? timeout = null) => timeout is TimeSpan limit ? Join(limit) : JoinCore(Timeout.InfiniteTimeSpan, CancellationToken.None);

    /// <summary>Completes when every worker has ended, after <see cref="Close"/> or <see cref="Terminate"/>.</summary>
    /// <exception cref="InvalidOperationException">Neither Close nor Terminate was called.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first (the workers go on ending).</exception>
    public async Task JoinAsync(CancellationToken cancellationToken = default)
    {
        while (NextWorkerEnd() is Task ended)
        {
            await ended.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        _timeoutTimer?.Dispose();
    }

    private bool JoinCore(TimeSpan timeout, CancellationToken cancellationToken)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (NextWorkerEnd() is Task ended)
        {
            TimeSpan left = timeout == Timeout.InfiniteTimeSpan ? timeout : timeout - System.Diagnostics.Stopwatch.GetElapsedTime(started);
            if (!ended.Wait(left == Timeout.InfiniteTimeSpan || left > TimeSpan.Zero ? left : TimeSpan.Zero, cancellationToken))
            {
                return false;
            }
        }

        _timeoutTimer?.Dispose();
        return true;
    }

    /// <summary>The end of a worker not settled yet (see <see cref="PoolWorker.Ended"/>); null when every worker has ended.</summary>
    private Task? NextWorkerEnd()
    {
        lock (_lock)
        {
            if (_state == PoolState.Running)
            {
                throw new InvalidOperationException("Join waits for the workers to end: call Close (finish the work) or Terminate (stop now) first.");
            }

            // A start loop still running may yet launch a worker (and kill it at once): wait for it first.
            return _startLoop?.Task ?? (_notEnded.Count == 0 ? null : _notEnded[0].Ended.Task);
        }
    }

    /// <summary>Terminates the pool (as Python's <c>with Pool()</c> does on exit) and waits for its workers.</summary>
    public void Dispose()
    {
        Terminate();
        Join();
        StartTimeline.Flush();
    }

    /// <summary>Terminates the pool and waits for its workers to end, without blocking a thread.</summary>
    public async ValueTask DisposeAsync()
    {
        Terminate();
        await JoinAsync().ConfigureAwait(false);
    }
}
