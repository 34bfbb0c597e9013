using System.Diagnostics;
using Microsoft.Extensions.Logging;
using ShmIpc.Diagnostics;
using ShmIpc.Hosting;
using ShmIpc.Internal;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

// The supervisor: workers start, end and are replaced here (see the Design notes in ShmPool.Dispatcher.cs).
public sealed partial class ShmPool
{
    /// <summary>
    /// How many workers may be Starting (launched, not Ready yet) at once: one per core and one more, for the parts of a
    /// start that wait rather than compute. A .NET child's start is ~50-100 ms of CPU, so children started together share
    /// the cores and become Ready together: more of them at once only delays the first (see the Design notes in
    /// ShmPool.Dispatcher.cs, "Starting workers"). Measured on 2 cores, Pool(64) from the constructor to every worker
    /// ready: window 1, 6.0 s; 2, 4.2-5.0 s; 3, 3.7-4.4 s; 4, 3.8-3.9 s (but its first result came at 220-270 ms
    /// instead of 120-170 ms); 8, 4.2 s.
    /// </summary>
    internal static int StartWindow { get; } = Environment.ProcessorCount + 1;

    /// <summary>A start is wanted: the pool runs (or closes with work queued) and can start workers. Under the lock.</summary>
    private bool StartsWanted => _broken is null && (_state == PoolState.Running || (_state == PoolState.Closed && _queue.Count > 0));

    /// <summary>Every slot holds a Ready worker. Under the lock.</summary>
    private bool AllWorkersReady
    {
        get
        {
            foreach (PoolWorker? worker in _slots)
            {
                if (worker is not { State: WorkerState.Ready })
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>
    /// Takes the next unfilled slot to start a worker in, when a start is wanted and the start window has room (the
    /// workers Starting plus the one being launched are fewer than <see cref="StartWindow"/>). Under the lock.
    /// </summary>
    private bool TryTakeSlotToStart(out int slot)
    {
        slot = -1;
        if (_unfilled.Count == 0 || !StartsWanted)
        {
            return false;
        }

        int starting = _launching;
        foreach (PoolWorker worker in _live)
        {
            starting += worker.State == WorkerState.Starting ? 1 : 0;
        }

        if (starting >= StartWindow)
        {
            return false;
        }

        slot = _unfilled.Dequeue();
        _launching++;
        return true;
    }

    /// <summary>Starts the start loop (<see cref="RunStarts"/>) if a start may be due and none runs. Under the lock.</summary>
    private void KickStarts()
    {
        if (_startLoop is null && _unfilled.Count > 0 && StartsWanted)
        {
            _startLoop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            ThreadPool.UnsafeQueueUserWorkItem(static pool => pool.RunStarts(), this, preferLocal: false);
        }
    }

    /// <summary>
    /// The start loop: starts workers in unfilled slots, one at a time, while the start window has room; then ends (the
    /// next Ready, end or free slot kicks it again). A start that fails breaks the pool: queued and later tasks fail with its reason.
    /// </summary>
    private void RunStarts()
    {
        while (true)
        {
            int slot;
            lock (_lock)
            {
                if (!TryTakeSlotToStart(out slot))
                {
                    _startLoop!.TrySetResult();
                    _startLoop = null;
                    return;
                }
            }

            try
            {
                StartWorker(slot);
            }
#pragma warning disable CA1031 // A worker that cannot start breaks the pool; callers get the reason.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _options.Logger?.LogError(e, "ShmPool {Pool}: a worker could not start; the pool takes no more tasks.", _poolId);
                lock (_lock)
                {
                    _broken ??= e;
                    FailQueued(_broken);
                    _workersChanged.Set();
                }
            }
        }
    }

    /// <summary>
    /// Starts a worker in <paramref name="slot"/>, taken by <see cref="TryTakeSlotToStart"/>: launches its process and at
    /// once creates its pipe (the child waits for the pipe as long as its parent lives), outside the lock, then puts the
    /// worker in its slot under the lock, or kills it if the pool no longer wants it (terminated meanwhile, say).
    /// </summary>
    /// <exception cref="Exception">The process or its pipe could not be made (the slot stays unfilled).</exception>
    private void StartWorker(int slot)
    {
        Process process;
        ChildChannel channel;
        try
        {
            ProcessIdentity me = ShmQueueContract.CurrentProcess;
            string pipeName = $"shmpool-{me.Pid}-{me.StartTime}-{_poolId}w{Interlocked.Increment(ref _workerCounter)}";
            (process, channel) = ChildLauncher.StartWithChannel(pipeName, $"ShmPool-{_poolId}-worker-{slot}", _options.Environment, _options.WaitStrategy, _initMessage);
        }
        catch
        {
            lock (_lock)
            {
                _launching--;
                _unfilled.Enqueue(slot);
            }

            throw;
        }

        lock (_lock)
        {
            _launching--;
            if (StartsWanted)
            {
                Attach(slot, process, channel);
                return;
            }

            _unfilled.Enqueue(slot);
        }

        channel.Dispose();
        ChildLauncher.KillAndReap(process);
    }

    /// <summary>Puts a launched worker in its slot and starts its reader. Under the lock.</summary>
    private void Attach(int slot, Process process, ChildChannel channel)
    {
        var worker = new PoolWorker(slot, process, channel) { ReaderSpin = new ReaderSpin((_options.WaitStrategy ?? ShmWaitStrategy.Default).SpinDuration) };
        _slots[slot] = worker;
        _live.Add(worker);
        _notEnded.Add(worker);
        worker.Reader = new Thread(() => ReadLoop(worker))
        {
            IsBackground = true,
            Name = $"ShmPool reader {worker.Pid}",
        };
        worker.Reader.Start();
        _options.Logger?.LogDebug("ShmPool {Pool}: started worker {Pid} in slot {Slot}.", _poolId, worker.Pid, slot);
    }

    /// <summary>The Init message every worker gets first: the serializer, and the initializer with its argument if any.</summary>
    private byte[] BuildInitMessage()
    {
        var init = new MessageWriter();
        init.Reset(MessageKind.Init).WriteString(_serializerName);
        // 0: no initializer; 1: one without an argument; 2: one with the argument's bytes after it.
        init.WriteByte(_initializer is null ? (byte)0 : _initializerArgument is null ? (byte)1 : (byte)2);
        if (_initializer is not null)
        {
            init.WriteTarget(_initializer);
            if (_initializerArgument is not null)
            {
                init.WriteBytes(_initializerArgument);
            }
        }

        return init.Written.ToArray();
    }

    /// <summary>The worker's pipe says it is gone: reap it, settle the chunks it held, fill its slot.</summary>
    private void OnWorkerEnded(PoolWorker worker)
    {
        if (!worker.Process.WaitForExit(5_000))
        {
            // Its pipe closed but it lingers (stuck on the way out): it is of no use to anyone. Not reaped yet: its pid is its own.
            SignalKill(worker);
            worker.Process.WaitForExit(5_000);
        }

        worker.Process.WaitForExit();
        int raw = worker.Process.ExitCode;
        int exitCode = raw is > 128 and <= 128 + 64 ? -(raw - 128) : raw;
        lock (_lock)
        {
            bool crashed = worker.IsCrash(exitCode);
            worker.OnGone();
            _live.Remove(worker);
            List<PoolChunk> held = [.. worker.InFlight];
            worker.InFlight.Clear();
            for (int i = held.Count - 1; i >= 0; i--)
            {
                PoolChunk chunk = held[i];
                chunk.Worker = null;
                if (chunk.IsCompleted)
                {
                    continue;
                }

                if (chunk.StopReason is Exception reason)
                {
                    chunk.Fail(reason);
                }
                else if (_state == PoolState.Terminated)
                {
                    chunk.Fail(new OperationCanceledException("The pool was terminated before this task completed."));
                }
                else if (!crashed || chunk.Retries < Math.Max(_options.TaskRetries, chunk.CrashRetries))
                {
                    if (crashed)
                    {
                        ShmMetrics.TasksCrashed.Add(1);
                        ShmMetrics.TasksRetried.Add(1);
                    }

                    chunk.Retries += crashed ? 1 : 0;
                    _queue.AddFirst(chunk);
                }
                else
                {
                    ShmMetrics.TasksCrashed.Add(1);
                    chunk.Fail(new ShmWorkerCrashedException(worker.Pid, exitCode));
                }
            }

            if (crashed && _state != PoolState.Terminated)
            {
                _options.Logger?.LogWarning("ShmPool {Pool}: worker {Pid} {How} holding {Count} chunk(s); replacing it.",
                    _poolId, worker.Pid, ShmWorkerCrashedException.DescribeExit(exitCode), held.Count);
            }

            if (_slots[worker.Slot] == worker)
            {
                _slots[worker.Slot] = null;
                ReplaceIfNeeded(worker.Slot);
            }

            Pump();
            KickStarts(); // a worker that ended while Starting leaves room in the start window
        }

        worker.Channel.Dispose();
        worker.Process.Dispose();
        ShmQueueContract.ChildEnded(); // what the worker created and left (killed, say) and nobody else holds goes with it
        lock (_lock)
        {
            _notEnded.Remove(worker);
        }

        worker.Ended.TrySetResult();
    }

    /// <summary>
    /// A worker left <paramref name="slot"/>: a fresh one is started there (by the start loop, outside the lock) while
    /// there is or may be work. Under the lock.
    /// </summary>
    private void ReplaceIfNeeded(int slot)
    {
        _unfilled.Enqueue(slot);
        if (StartsWanted)
        {
            ShmMetrics.WorkersReplaced.Add(1);
            KickStarts();
        }
    }

    /// <summary>Kills every worker and fails what is queued; the readers settle the rest. Under the lock.</summary>
    private void TerminateLocked()
    {
        if (_state == PoolState.Terminated)
        {
            return;
        }

        _state = PoolState.Terminated;
        _workersChanged.Set();
        FailQueued(new OperationCanceledException("The pool was terminated before this task started."));
        foreach (PoolWorker worker in _live)
        {
            Kill(worker);
        }
    }

    /// <summary>The TaskTimeout timer's tick: a worker whose running chunk is over time is killed, failing that chunk with TimeoutException.</summary>
    private void EnforceTaskTimeout()
    {
        TimeSpan limit = _options.TaskTimeout!.Value;
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            foreach (PoolWorker worker in _live)
            {
                if (worker.InFlight.Count > 0 && worker.State != WorkerState.Killed && Stopwatch.GetElapsedTime(worker.HeadStarted, now) > limit)
                {
                    PoolChunk head = worker.InFlight[0];
                    Stop(head, new TimeoutException($"The task ran longer than the pool's TaskTimeout ({limit.TotalMilliseconds:0} ms); " +
                        $"its worker {worker.Pid} was killed and replaced."));
                }
            }
        }
    }

    /// <summary>
    /// A worker that broke the protocol is killed on purpose: no task goes to it any more (Pump and Apply skip it), and
    /// the other chunks it holds are sent again elsewhere rather than failed as crashed (they did nothing wrong).
    /// </summary>
    private void TakeOutOfService(PoolWorker worker)
    {
        lock (_lock)
        {
            Kill(worker);
        }
    }

    /// <summary>
    /// Kills <paramref name="worker"/> on purpose (its state becomes Killed: its death is no crash), unless it was killed
    /// or settled already (a settled one was reaped: its pid may belong to another process by now). Under the lock.
    /// </summary>
    private static void Kill(PoolWorker worker)
    {
        if (worker.OnKilled())
        {
            SignalKill(worker);
        }
    }

    /// <summary>SIGKILL to a worker not reaped yet; wakes its parked reader, which would notice only at its next idle check.</summary>
    private static void SignalKill(PoolWorker worker)
    {
        if (!worker.Process.HasExited)
        {
            _ = ShmQueueContract.Kill(worker.Pid);
        }

        worker.ReaderWake.Set();
    }
}
