using System.Diagnostics;
using Microsoft.Extensions.Logging;
using ShmIpc.Diagnostics;
using ShmIpc.Hosting;
using ShmIpc.Interop;
using ShmIpc.Memory;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

// Design:
// - One lock (_lock) guards the dispatch state: the queue of chunks not sent, each worker's in-flight list,
//   the slots, the pool's state. It is held for short steps only: choosing a worker and copying a chunk
//   into its pipe (a memcpy; the ring has room because a worker holds at most MaxChunksInFlightPerWorker
//   chunks), never while waiting for a worker or deserializing results.
// - Each worker has one reader thread. When the worker has something to say (it is starting, it holds
//   chunks, it is stopping) and no caller holds its pipe, the reader is its only receiver. Results complete
//   their chunk and pull the next queued chunk for that worker. When the pipe reports the worker gone (a
//   receive on an empty pipe whose peer died throws within one wait slice), the reader reaps the process,
//   then decides the fate of exactly the chunks that worker held: failed for the reason they were stopped
//   (cancel, timeout), sent again (their worker was killed for another chunk's sake, or a retry is allowed),
//   or failed with ShmWorkerCrashedException. Then the slot gets a fresh worker, unless the pool is ending.
// - An idle worker's reader parks on an event (not on the pipe), asking the OS every IdleCheckInterval
//   whether the worker died. That leaves the pipe free for the fast path of a synchronous Apply: the
//   caller picks an idle worker whose reader is parked, marks it CallerReceiving, sends, and receives the
//   reply on its own thread: two threads per round trip (caller, worker), each spinning briefly on the
//   shared ring, no thread-pool hop and no event. Anything else the caller receives meanwhile (chunks
//   pumped to that worker) is handled as the reader would. When the caller is done (its result, the
//   worker's end, a protocol error) it lets go and wakes the reader, which takes over whatever is left,
//   the worker's end included, so every fault is settled in one place (OnWorkerEnded).
// - Chunks are sent only to workers that said Ready (their initializer ran). Queued chunks go to the Ready
//   worker with the fewest chunks in flight; a synchronous Apply goes to the idle worker that finished
//   last (the one most likely still spinning: it picks the task up with no syscall).
public sealed partial class ShmPool
{
    private static int s_poolCounter;

    private readonly ShmPoolOptions _options;
    private readonly IShmObjectSerializer _serializer;
    private readonly string _serializerName;
    private readonly TargetMethod? _initializer;

    /// <summary>The initializer's serialized argument; null when it takes none.</summary>
    private readonly byte[]? _initializerArgument;
    private readonly Lock _lock = new();
    private readonly PoolWorker?[] _slots;
    private readonly List<PoolWorker> _live = new();
    private readonly LinkedList<PoolChunk> _queue = new();
    private readonly Dictionary<TargetMethod, PoolFunction> _functions = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<System.Reflection.MethodInfo, PoolFunction> _functionsByMethod = new();
    private readonly int _poolId = Interlocked.Increment(ref s_poolCounter);
    private readonly Timer? _timeoutTimer;

    /// <summary>The pool's wait strategy without its spin: a reader whose spins go unrewarded sleeps at once (see ReaderSpin).</summary>
    private readonly ShmWaitStrategy _noSpin;
    private long _nextChunkId;

    /// <summary>Results received so far, under the lock: orders the workers by their last result (see PoolWorker.LastResultOrder).</summary>
    private long _resultCount;
    private int _workerCounter;
    private PoolState _state;
    private Exception? _broken;

    private enum PoolState
    {
        Running,
        Closed,
        Terminated,
    }

    private void Submit<TChunk>(IReadOnlyList<TChunk> chunks)
        where TChunk : PoolChunk
    {
        lock (_lock)
        {
            ThrowIfNotTakingTasks();
            foreach (TChunk chunk in chunks)
            {
                _queue.AddLast(chunk);
            }

            Pump();
        }
    }

    /// <summary>Under the lock.</summary>
    private void ThrowIfNotTakingTasks()
    {
        if (_state != PoolState.Running)
        {
            throw new InvalidOperationException($"The pool is {(_state == PoolState.Closed ? "closed" : "terminated")}: it takes no new tasks.");
        }

        if (_broken is not null)
        {
            throw new InvalidOperationException("The pool's workers cannot start: " + _broken.Message, _broken);
        }
    }

    /// <summary>Sends queued chunks to Ready workers with room; when closing, tells idle workers to stop. Under the lock.</summary>
    private void Pump()
    {
        while (_queue.First is { } node)
        {
            PoolWorker? best = null;
            foreach (PoolWorker? w in _slots)
            {
                if (w is { IsReady: true, IsStopping: false, IsGone: false, KilledByPool: false }
                    && w.InFlight.Count < _options.MaxChunksInFlightPerWorker
                    && (best is null || w.InFlight.Count < best.InFlight.Count))
                {
                    best = w;
                }
            }

            if (best is null)
            {
                break;
            }

            _queue.RemoveFirst();
            PoolChunk chunk = node.Value;
            if (!chunk.IsCompleted)
            {
                SendChunk(best, chunk);
            }
        }

        if (_state == PoolState.Closed && _queue.Count == 0)
        {
            foreach (PoolWorker w in _live)
            {
                if (w.InFlight.Count == 0 && !w.IsStopping)
                {
                    SendStop(w);
                }
            }
        }
    }

    private void SendChunk(PoolWorker worker, PoolChunk chunk)
    {
        try
        {
            if (worker.DefinedFunctions.Add(chunk.Function.Id))
            {
                var define = new MessageWriter();
                define.Reset(MessageKind.Define).WriteInt32(chunk.Function.Id);
                define.WriteTarget(chunk.Function.Target);
                worker.Channel.Send(define.Written);
            }

            if (chunk.Activity is { } activity)
            {
                // The worker's span of this task becomes a child of ours: the trace crosses the process boundary.
                var trace = new MessageWriter();
                trace.Reset(MessageKind.Trace).WriteString(activity.Id ?? "");
                worker.Channel.Send(trace.Written);
            }

            worker.Channel.Send(chunk.Message.Span);
        }
        catch (ShmPeerClosedException)
        {
            // It died a moment ago; its reader will notice. The chunk waits for another worker.
            worker.DefinedFunctions.Remove(chunk.Function.Id);
            worker.IsStopping = true;
            _queue.AddFirst(chunk);
            return;
        }
        catch (Exception e) when (e is ShmCorruptionException or ObjectDisposedException or IOException)
        {
            // The pipe itself failed (a peer wrote nonsense into it, or it is being torn down): the worker is of no
            // use; it is killed and replaced, and the chunk, which never reached it, waits for another worker.
            // (A chunk too long for a pipe never gets here: it is refused when encoded.)
            _options.Logger?.LogError(e, "ShmPool {Pool}: the pipe of worker {Pid} failed; killing it.", _poolId, worker.Pid);
            worker.DefinedFunctions.Remove(chunk.Function.Id);
            worker.KilledByPool = true;
            KillNoThrow(worker);
            _queue.AddFirst(chunk);
            return;
        }

        if (worker.InFlight.Count == 0 && _options.TaskTimeout is not null)
        {
            worker.HeadStarted = Stopwatch.GetTimestamp();
        }

        worker.InFlight.Add(chunk);
        chunk.Worker = worker;
        chunk.OnSent();
        WakeReader(worker);
        worker.TasksAssigned++;
        if (_options.MaxTasksPerWorker is int max && worker.TasksAssigned >= max)
        {
            // Retire it after this chunk; a fresh process takes its slot now so the pool keeps its size.
            SendStop(worker);
            if (_slots[worker.Slot] == worker)
            {
                _slots[worker.Slot] = null;
                ReplaceIfNeeded(worker.Slot);
            }
        }
    }

    private static void SendStop(PoolWorker worker)
    {
        worker.IsStopping = true;
        WakeReader(worker);
        try
        {
            var stop = new MessageWriter();
            worker.Channel.Send(stop.Reset(MessageKind.Stop).Written);
        }
        catch (ShmPeerClosedException)
        {
            // Gone already: its reader handles it.
        }
    }

    /// <summary>Wakes a parked reader that has a reason to receive now. Under the lock.</summary>
    private static void WakeReader(PoolWorker worker)
    {
        if (!worker.ReaderReceiving && !worker.CallerReceiving)
        {
            worker.ReaderWake.Set();
        }
    }

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
        ProcessIdentity me = SharedMemoryPlatform.Current.CurrentProcess;
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
        worker.Reader = new Thread(() => ReadLoop(worker))
        {
            IsBackground = true,
            Name = $"ShmPool reader {worker.Pid}",
        };
        worker.Reader.Start();
        _options.Logger?.LogDebug("ShmPool {Pool}: started worker {Pid} in slot {Slot}.", _poolId, worker.Pid, slot);
    }

    /// <summary>How often a parked reader asks the OS whether its idle worker died.</summary>
    private static readonly TimeSpan IdleCheckInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest single receive of a reader, after which it re-checks whether it should receive at all.</summary>
    private static readonly TimeSpan ReceiveSlice = TimeSpan.FromMilliseconds(250);

    /// <summary>The worker's receiver whenever no caller is; ends when the worker has ended.</summary>
    private void ReadLoop(PoolWorker worker)
    {
        try
        {
            while (true)
            {
                if (!TakeReceive(worker))
                {
                    // Idle, or a caller receives: park until woken; now and then ask the OS whether it died.
                    if (!worker.ReaderWake.Wait(IdleCheckInterval) && worker.Process.HasExited)
                    {
                        lock (_lock)
                        {
                            worker.ExitSeen = true;
                        }
                    }

                    continue;
                }

                ReadOnlyMemory<byte> message;
                try
                {
                    ReaderSpin spin = worker.ReaderSpin!;
                    bool spinning = spin.ShouldSpin;
                    long started = Stopwatch.GetTimestamp();
                    bool received = worker.Channel.TryReceiveBorrowed(out message, ReceiveSlice, spinning ? null : _noSpin);
                    if (received)
                    {
                        spin.Observe(spinning, Stopwatch.GetTimestamp() - started);
                    }
                    else
                    {
                        // A worker that died before it connected leaves the pipe looking fine: ask the OS.
                        if (!worker.Process.HasExited)
                        {
                            continue;
                        }

                        if (!worker.Channel.TryReceiveBorrowed(out message, TimeSpan.Zero))
                        {
                            break;
                        }
                    }
                }
                catch (ShmPeerClosedException)
                {
                    break;
                }

                Handle(worker, message);
            }
        }
#pragma warning disable CA1031 // A protocol error ends this worker, not the pool: it is killed and replaced.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _options.Logger?.LogError(e, "ShmPool {Pool}: worker {Pid} sent something unreadable; killing it.", _poolId, worker.Pid);
            TakeOutOfService(worker);
        }

        OnWorkerEnded(worker);
    }

    /// <summary>Decides whether the reader receives now (true) or parks; the flag it sets keeps callers off the pipe.</summary>
    private bool TakeReceive(PoolWorker worker)
    {
        lock (_lock)
        {
            bool take = !worker.CallerReceiving && worker.NeedsReader;
            worker.ReaderReceiving = take;
            if (!take)
            {
                // Reset under the lock: every Set that matters happens under it too, after the state it announces.
                worker.ReaderWake.Reset();
            }

            return take;
        }
    }

    /// <summary>
    /// The fast path of a synchronous Apply: sends <paramref name="chunk"/> to an idle worker whose reader is
    /// parked and returns that worker, now held by the caller for receiving; or queues it as usual (null).
    /// </summary>
    private PoolWorker? SubmitAndTakeReceive(PoolChunk chunk)
    {
        lock (_lock)
        {
            ThrowIfNotTakingTasks();
            PoolWorker? best = null;
            if (_queue.Count == 0)
            {
                foreach (PoolWorker? w in _slots)
                {
                    if (w is { IsFreeForCaller: true } && (best is null || w.LastResultOrder > best.LastResultOrder))
                    {
                        best = w;
                    }
                }
            }

            if (best is null)
            {
                _queue.AddLast(chunk);
                Pump();
                return null;
            }

            best.CallerReceiving = true;
            SendChunk(best, chunk);
            if (chunk.Worker != best)
            {
                // It died a moment ago: the chunk was queued again; let its reader see to the end.
                best.CallerReceiving = false;
                best.ReaderWake.Set();
                Pump();
                return null;
            }

            return best;
        }
    }

    /// <summary>
    /// Receives on <paramref name="worker"/>'s pipe, as its reader would, until <paramref name="chunk"/> completes
    /// or the worker ends; then hands the pipe back to the reader thread (which settles a worker's end).
    /// </summary>
    private void ReceiveFor(PoolWorker worker, CallerChunk chunk)
    {
        bool handedBack = false;
        try
        {
            while (!chunk.IsCompleted)
            {
                if (!worker.Channel.TryReceiveBorrowed(out ReadOnlyMemory<byte> message, ReceiveSlice))
                {
                    if (worker.Process.HasExited)
                    {
                        break;
                    }

                    continue;
                }

                if (IsResultOf(chunk, message.Span))
                {
                    handedBack = true;
                    TakeOwnResult(worker, chunk, message);
                    return;
                }

                Handle(worker, message);
            }
        }
        catch (ShmPeerClosedException)
        {
            // Gone: the reader learns it again and settles the chunks.
        }
#pragma warning disable CA1031 // As in ReadLoop: a protocol error ends this worker, and the reader settles it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _options.Logger?.LogError(e, "ShmPool {Pool}: worker {Pid} sent something unreadable; killing it.", _poolId, worker.Pid);
            TakeOutOfService(worker);
        }
        finally
        {
            if (!handedBack)
            {
                lock (_lock)
                {
                    HandBack(worker);
                }
            }
        }
    }

    /// <summary>A Results or RawResults message for <paramref name="chunk"/>.</summary>
    private static bool IsResultOf(PoolChunk chunk, ReadOnlySpan<byte> message) =>
        message.Length >= 1 + sizeof(long)
        && message[0] is (byte)MessageKind.Results or (byte)MessageKind.RawResults
        && System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(message[1..]) == chunk.Id;

    /// <summary>
    /// The common end of <see cref="ReceiveFor"/>: the caller's own result. Read into the chunk while the caller
    /// still holds the pipe (the message lies in the pipe's receive buffer); then one lock section takes the chunk
    /// off the worker and hands the pipe back, whatever happened; the chunk completes (or fails) last. As
    /// <see cref="Handle"/> would, with one lock section instead of two and no dispatch on the message's kind.
    /// </summary>
    private void TakeOwnResult(PoolWorker worker, CallerChunk chunk, ReadOnlyMemory<byte> message)
    {
        Exception? failure = null;
        bool unreadable = false;
        try
        {
            bool raw = message.Span[0] == (byte)MessageKind.RawResults;
            if (!raw)
            {
                // The serializer may keep what it was given (see Handle).
                message = message.ToArray();
            }

            var reader = new MessageReader(message);
            _ = reader.ReadKind();
            _ = reader.ReadInt64();
            chunk.ReadResults(ref reader, _serializer, raw);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or IndexOutOfRangeException)
        {
            unreadable = true;
            failure = new ShmWorkerCrashedException($"Worker process {worker.Pid} returned results that cannot be read ({e.Message}); it is replaced.", e);
            _options.Logger?.LogError(e, "ShmPool {Pool}: worker {Pid} sent something unreadable; killing it.", _poolId, worker.Pid);
        }
#pragma warning disable CA1031 // Anything else (out of memory copying a large result) fails this task only; the pipe is handed back below.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failure = e;
        }

        lock (_lock)
        {
            int index = IndexOf(worker.InFlight, chunk.Id);
            if (unreadable)
            {
                // Out of service before anyone can pick it (Pump, the next Apply): killed on purpose, so the other
                // chunks it may hold go to other workers rather than fail; its reader settles its end.
                if (index >= 0)
                {
                    worker.InFlight.RemoveAt(index);
                    chunk.Worker = null;
                }

                TakeOutOfServiceLocked(worker);
            }
            else if (index >= 0)
            {
                TakeFromWorker(worker, index);
            }

            HandBack(worker);
            Pump();
        }

        if (failure is null)
        {
            chunk.Finish();
        }
        else
        {
            chunk.Fail(failure);
        }
    }

    /// <summary>The caller lets go of the worker's pipe; the reader takes it if there is something to receive. Under the lock.</summary>
    private static void HandBack(PoolWorker worker)
    {
        worker.CallerReceiving = false;

        // Only when there is something to receive: waking the parked reader after every Apply costs a futex wake.
        if (worker.NeedsReader)
        {
            worker.ReaderWake.Set();
        }
    }

    /// <summary>Takes in-flight chunk <paramref name="index"/> off <paramref name="worker"/>, whose result arrived. Under the lock.</summary>
    private PoolChunk TakeFromWorker(PoolWorker worker, int index)
    {
        PoolChunk chunk = worker.InFlight[index];
        worker.InFlight.RemoveAt(index);
        chunk.Worker = null;
        worker.LastResultOrder = ++_resultCount;
        if (index == 0 && worker.InFlight.Count > 0 && _options.TaskTimeout is not null)
        {
            // The next chunk starts running now (read only by EnforceTaskTimeout: no clock read without a TaskTimeout).
            worker.HeadStarted = Stopwatch.GetTimestamp();
        }

        return chunk;
    }

    /// <summary>
    /// Handles one message from <paramref name="worker"/>. It lies in the worker's receive buffer (see
    /// <see cref="ChildChannel.TryReceiveBorrowed"/>), valid until the next receive: Results are copied out
    /// first, as their values go to the serializer, which may keep what it was given.
    /// </summary>
    private void Handle(PoolWorker worker, ReadOnlyMemory<byte> message)
    {
        if (!message.IsEmpty && message.Span[0] == (byte)MessageKind.Results)
        {
            message = message.ToArray();
        }

        var reader = new MessageReader(message);
        MessageKind kind = reader.ReadKind();
        switch (kind)
        {
            case MessageKind.Ready:
                lock (_lock)
                {
                    worker.IsReady = true;
                    Pump();
                }

                break;

            case MessageKind.Results:
            case MessageKind.RawResults:
                long chunkId = reader.ReadInt64();
                PoolChunk? chunk;
                lock (_lock)
                {
                    int index = IndexOf(worker.InFlight, chunkId);
                    if (index < 0)
                    {
                        throw new InvalidDataException($"Worker {worker.Pid} returned chunk {chunkId}, which it does not hold.");
                    }

                    chunk = TakeFromWorker(worker, index);
                    Pump();
                }

                try
                {
                    chunk.Complete(ref reader, _serializer, raw: kind == MessageKind.RawResults);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or IndexOutOfRangeException)
                {
                    // The chunk already left the worker's list: fail it here, or its caller would wait forever.
                    // Then let the error end this worker (see ReadLoop).
                    chunk.Fail(new ShmWorkerCrashedException($"Worker process {worker.Pid} returned results that cannot be read ({e.Message}); it is replaced.", e));
                    throw;
                }

                break;

            case MessageKind.InitFailed:
                ShmRemoteException error = reader.ReadError().ToException();
                _options.Logger?.LogError("ShmPool {Pool}: the initializer failed in worker {Pid}: {Error}", _poolId, worker.Pid, error.Message);
                lock (_lock)
                {
                    _broken ??= new InvalidOperationException($"the initializer threw in worker {worker.Pid}: {error.Message}", error);
                    FailQueued(_broken);
                }

                break;

            default:
                throw new InvalidDataException($"Worker {worker.Pid} sent a message of an unknown kind.");
        }
    }

    private static int IndexOf(List<PoolChunk> chunks, long chunkId)
    {
        for (int i = 0; i < chunks.Count; i++)
        {
            if (chunks[i].Id == chunkId)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The worker's pipe says it is gone: reap it, settle the chunks it held, fill its slot.</summary>
    private void OnWorkerEnded(PoolWorker worker)
    {
        if (!worker.Process.WaitForExit(5_000))
        {
            // Its pipe closed but it lingers (stuck on the way out): it is of no use to anyone.
            KillNoThrow(worker);
            worker.Process.WaitForExit(5_000);
        }

        worker.Process.WaitForExit();
        int raw = worker.Process.ExitCode;
        int exitCode = raw is > 128 and <= 128 + 64 ? -(raw - 128) : raw;
        lock (_lock)
        {
            worker.IsGone = true;
            _live.Remove(worker);
            bool crashed = !worker.KilledByPool && !(worker.IsStopping && exitCode == 0);
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
        StaleSweeper.Poke(force: true); // what the worker created and left (killed, say) and nobody else holds goes with it
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

    private void Cancel<TChunk>(IReadOnlyList<TChunk> chunks)
        where TChunk : PoolChunk
    {
        lock (_lock)
        {
            foreach (TChunk chunk in chunks)
            {
                Stop(chunk, new OperationCanceledException("The task was cancelled."));
            }
        }
    }

    /// <summary>Stops one chunk: dropped from the queue, or its worker killed. Under the lock.</summary>
    private void Stop(PoolChunk chunk, Exception reason)
    {
        if (chunk.IsCompleted)
        {
            return;
        }

        if (chunk.Worker is PoolWorker worker)
        {
            chunk.StopReason = reason;
            worker.KilledByPool = true;
            KillNoThrow(worker);
        }
        else
        {
            _queue.Remove(chunk);
            chunk.Fail(reason);
        }
    }

    /// <summary>An Imap left early: its chunks still queued are dropped (running ones finish unseen).</summary>
    private void DropQueued<TChunk>(List<TChunk> chunks)
        where TChunk : PoolChunk
    {
        lock (_lock)
        {
            foreach (TChunk chunk in chunks)
            {
                if (chunk.Worker is null && !chunk.IsCompleted)
                {
                    _queue.Remove(chunk);
                    chunk.Fail(new OperationCanceledException("The Imap that submitted this task was abandoned."));
                }
            }
        }
    }

    private void FailQueued(Exception reason)
    {
        while (_queue.First is { } node)
        {
            _queue.RemoveFirst();
            node.Value.Fail(reason);
        }
    }

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
            worker.KilledByPool = true;
            KillNoThrow(worker);
        }
    }

    private void EnforceTaskTimeout()
    {
        TimeSpan limit = _options.TaskTimeout!.Value;
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            foreach (PoolWorker worker in _live)
            {
                if (worker.InFlight.Count > 0 && !worker.KilledByPool && Stopwatch.GetElapsedTime(worker.HeadStarted, now) > limit)
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
            TakeOutOfServiceLocked(worker);
        }
    }

    /// <summary>As <see cref="TakeOutOfService"/>, under the lock.</summary>
    private static void TakeOutOfServiceLocked(PoolWorker worker)
    {
        worker.KilledByPool = true;
        KillNoThrow(worker);
    }

    /// <summary>SIGKILL, unless the process was reaped already (its pid may belong to another process by now).</summary>
    private static void KillNoThrow(PoolWorker worker)
    {
        if (!worker.IsGone && !worker.Process.HasExited)
        {
            _ = ProcessLibc.Kill(worker.Pid, ProcessLibc.SIGKILL);
        }

        // A parked reader would notice only at its next idle check; KilledByPool (set by the callers) makes it receive.
        worker.ReaderWake.Set();
    }
}
