using System.Diagnostics;
using Microsoft.Extensions.Logging;
using ShmIpc.Hosting;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

// Design:
// The pool is four pieces around one lock (_lock), each in its own file, meeting at the worker's state machine
// (Pool/PoolWorker.cs: a worker's life is one WorkerState, and who receives on its pipe one PipeReceiver, each
// changed only along the table in its Design notes):
// - Dispatcher (ShmPool.Dispatcher.cs): the queue of chunks not sent, and sending them to Ready workers. Queued
//   chunks go to the Ready worker with the fewest chunks in flight; a worker holds at most
//   MaxChunksInFlightPerWorker, so the copy into its pipe (a memcpy) never waits. Cancel, stop and drop of chunks.
// - Supervisor (ShmPool.Supervisor.cs): a worker's start, its end (reaped, the chunks it held settled exactly once:
//   failed for the reason they were stopped, sent again, or failed as crashed), its replacement, kills on purpose
//   (cancel, TaskTimeout, Terminate, protocol error). Every end is settled in one place: OnWorkerEnded.
// - Reader (ShmPool.Reader.cs): one thread per worker, its receiver whenever no caller is. Results complete their
//   chunk and pull the next queued one. When the pipe reports the worker gone (a receive on an empty pipe whose
//   peer died throws within one wait slice) it hands over to the supervisor. An idle worker's reader parks on an
//   event (not on the pipe), asking the OS every IdleCheckInterval whether the worker died.
// - Caller fast path (ShmPool.CallerPath.cs): a synchronous Apply picks the idle worker that finished last (the one
//   most likely still spinning: it picks the task up with no syscall) whose reader is parked, takes its pipe,
//   sends, and receives the reply on its own thread: two threads per round trip (caller, worker), no thread-pool
//   hop, no event. Anything else it receives meanwhile is handled as the reader would; then it hands the pipe back.
// The lock guards the queue, the slots, each worker's state and in-flight list, and the pool's state. It is held
// for short steps only (choosing a worker and copying a chunk into its pipe), never while waiting for a worker,
// starting one, or deserializing results.
//
// Starting workers (ShmPool.Supervisor.cs): slots without a worker wait in _unfilled; one start loop per pool fills
// them one at a time, outside the lock (a process start and a pipe creation take milliseconds: dispatch goes on), and
// keeps at most StartWindow workers Starting (launched, not Ready yet). A .NET child's start is ~50-100 ms of CPU: N
// children started together share the cores and all become Ready together, after N times that / cores, so Pool(200)
// would serve nothing for tens of seconds; through the window, workers become Ready one after the other from the first
// start on, the total stays linear (the window keeps the cores busy), and the pool serves from its first Ready worker
// (chunks go to Ready workers only; the others join as they become Ready). Each child's pipe is created right after its
// process starts, and the child waits for it as long as its parent lives: no child is given up for starting slowly.
// The constructor starts the first window itself (so a pool that cannot start a worker throws there, and a pool no
// larger than the window has all its processes when the constructor returns); the loop starts the rest, kicked
// whenever room may have appeared: a worker said Ready, a worker ended, a slot became free. WaitForWorkers waits
// until every slot holds a Ready worker.
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

    /// <summary>Workers started whose end is not settled yet (still in <see cref="_live"/>, or releasing their pipe): what Join waits for.</summary>
    private readonly List<PoolWorker> _notEnded = new();
    private readonly LinkedList<PoolChunk> _queue = new();
    private readonly Dictionary<TargetMethod, PoolFunction> _functions = new();

    /// <summary>Slots without a worker that the start loop fills, in order (see "Starting workers" above).</summary>
    private readonly Queue<int> _unfilled = new();

    /// <summary>Set, under the lock, whenever a worker becomes Ready or the pool stops being able to serve: what WaitForWorkers waits on.</summary>
    private readonly ManualResetEventSlim _workersChanged = new(false);

    /// <summary>The Init message, the same bytes for every worker and every replacement.</summary>
    private readonly byte[] _initMessage;

    /// <summary>The start loop while it runs (null when none): at most one per pool; Join waits for it.</summary>
    private TaskCompletionSource? _startLoop;

    /// <summary>Workers taken out of <see cref="_unfilled"/> and being launched outside the lock (0 or 1: one start loop).</summary>
    private int _launching;
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
                if (w is { CanTakeChunks: true }
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
                if (w.InFlight.Count == 0 && w.State is WorkerState.Starting or WorkerState.Ready)
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
            worker.OnStopping();
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
            Kill(worker);
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

    /// <summary>Tells a worker to finish what it holds and exit; it takes no more chunks. Under the lock.</summary>
    private static void SendStop(PoolWorker worker)
    {
        worker.OnStopping();
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
        if (worker.ReaderParked)
        {
            worker.ReaderWake.Set();
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
            Kill(worker);
        }
        else
        {
            _queue.Remove(chunk);
            chunk.Fail(reason);
        }
    }

    /// <summary>An Imap left early, or a call whose caller stopped waiting: its chunks still queued are dropped (running ones finish unseen).</summary>
    private void DropQueued<TChunk>(IReadOnlyList<TChunk> chunks)
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
}
