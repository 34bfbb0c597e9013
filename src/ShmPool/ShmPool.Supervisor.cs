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
    /// <summary>Starts a worker in <paramref name="slot"/>. Under the lock.</summary>
    private void StartWorker(int slot) => AttachWorker(LaunchWorker(slot));

    /// <summary>
    /// Starts the process of a worker for <paramref name="slot"/>, before its pipe exists: the child waits for the
    /// pipe to appear (ChildHost.ConnectWhenCreated), so the pipe's creation, and the other workers' launches,
    /// overlap the child's runtime start instead of delaying it. Under the lock.
    /// </summary>
    private (int Slot, string PipeName, Process Process) LaunchWorker(int slot)
    {
        int n = ++_workerCounter;
        ProcessIdentity me = ShmQueueContract.CurrentProcess;
        string pipeName = $"shmpool-{me.Pid}-{me.StartTime}-{_poolId}w{n}";
        return (slot, pipeName, ChildLauncher.Start(pipeName, $"ShmPool-{_poolId}-worker-{slot}", _options.Environment));
    }

    /// <summary>Creates the pipe of a launched worker, sends it Init and starts its reader; kills it if that fails. Under the lock.</summary>
    private void AttachWorker((int Slot, string PipeName, Process Process) launched)
    {
        (int slot, string pipeName, Process process) = launched;
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

        ChildChannel? channel = null;
        try
        {
            channel = ChildChannel.Create(pipeName, _options.WaitStrategy);
            channel.Send(init.Written);
        }
        catch
        {
            channel?.Dispose();
            ChildLauncher.KillAndReap(process);
            throw;
        }

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
                else if (!crashed || chunk.Retries < _options.TaskRetries)
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

    /// <summary>Fills an empty slot while there is or may be work. Under the lock.</summary>
    private void ReplaceIfNeeded(int slot)
    {
        bool wanted = _broken is null && (_state == PoolState.Running || (_state == PoolState.Closed && _queue.Count > 0));
        if (!wanted)
        {
            return;
        }

        try
        {
            StartWorker(slot);
            ShmMetrics.WorkersReplaced.Add(1);
        }
#pragma warning disable CA1031 // A worker that cannot start breaks the pool; callers get the reason.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _broken = e;
            FailQueued(e);
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
