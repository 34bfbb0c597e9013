using System.Diagnostics;
using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>
/// The parent's view of one worker process: its pipe, the chunks it holds (in the order sent, so the
/// first is the one running), the functions it knows, and where it is in its life (<see cref="State"/>).
/// Everything but the receive itself is changed under the pool's lock.
/// </summary>
/// <remarks>
/// Design:
/// A worker's life is one <see cref="WorkerState"/>, changed only by the event methods below (each one a row
/// of this table), all under the pool's lock; <see cref="MoveTo"/> refuses any pair not in the table.
/// <code>
///   from                          event                                       to        by
///   Starting                      Ready message received                      Ready     the pipe's receiver (Handle)
///   Starting, Ready               Stop sent (retired, pool closing), or a     Stopping  dispatcher (SendStop, SendChunk)
///                                 send found the peer gone
///   Starting, Ready, Stopping,    killed on purpose: cancel, TaskTimeout,     Killed    dispatcher, supervisor, fast path
///   Exited                        Terminate, protocol error, broken pipe
///   Ready                         the OS says it exited while idle            Exited    parked reader (ReadLoop)
///   any but Gone                  its end settled (reaped, chunks decided)    Gone      reader (OnWorkerEnded)
/// </code>
/// Events that meet a state they do not apply to change nothing (Ready after Stop was sent; a second kill; Stop
/// to a worker being killed; an exit seen while it is stopping anyway: its reader receives already).
/// What the states decide: chunks go only to a Ready worker (<see cref="CanTakeChunks"/>); the reader must receive
/// whenever the worker is not an idle Ready one (<see cref="NeedsReader"/>: messages can come, or its end must be
/// noticed); a death is a crash unless the worker was Killed, or was Stopping and exited with 0 (<see cref="IsCrash"/>).
///
/// Who receives on the pipe is a second, independent question (<see cref="PipeReceiver"/>), because a caller may
/// hold the pipe of a worker whatever happens to the worker's life meanwhile (a Stop for MaxTasksPerWorker, a kill):
/// <code>
///   from    event                                                          to      by
///   None    the reader has a reason to receive (NeedsReader)               Reader  reader (TakeReceive)
///   Reader  nothing to receive: it parks                                   None    reader (TakeReceive)
///   None    a synchronous Apply takes an idle Ready worker (IsFreeForCaller) Caller  caller (SubmitAndTakeReceive)
///   Caller  the caller has its result, or gives up on the worker           None    caller (HandBack)
/// </code>
/// One receiver at a time: each move out of None happens under the lock, only from None.
/// </remarks>
internal sealed class PoolWorker
{
    public PoolWorker(int slot, Process process, ChildChannel channel)
    {
        Slot = slot;
        Process = process;
        Channel = channel;
        Pid = process.Id;
    }

    /// <summary>The pool's slot this worker fills; its replacement takes the same slot.</summary>
    public int Slot { get; }

    public int Pid { get; }

    public Process Process { get; }

    public ChildChannel Channel { get; }

    /// <summary>Where the worker is in its life (see the Design table). Under the lock.</summary>
    public WorkerState State { get; private set; }

    /// <summary>Who receives on the pipe now (see the Design table). Under the lock.</summary>
    public PipeReceiver Receiver { get; private set; }

    /// <summary>Chunks sent, oldest (running) first.</summary>
    public List<PoolChunk> InFlight { get; } = new();

    /// <summary>
    /// When the oldest in-flight chunk started running (sent to an idle worker, or its predecessor finished). Kept only
    /// when the pool has a TaskTimeout, its only reader: a clock read per chunk costs the synchronous Apply ~20 ns.
    /// </summary>
    public long HeadStarted { get; set; }

    public HashSet<int> DefinedFunctions { get; } = new();

    /// <summary>Chunks sent over its life (for MaxTasksPerWorker).</summary>
    public int TasksAssigned { get; set; }

    public Thread? Reader { get; set; }

    /// <summary>Completes once its end is settled and its pipe and process released (what Join waits for).</summary>
    public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Whether the reader spins for the next result (see <see cref="Pool.ReaderSpin"/>); made with the worker.</summary>
    public ReaderSpin? ReaderSpin { get; set; }

    /// <summary>
    /// The pool's count of results when its last result arrived (an order, not a time: no clock read per result).
    /// The worker that finished most recently is the one most likely still spinning.
    /// </summary>
    public long LastResultOrder { get; set; }

    /// <summary>Set to wake a parked reader thread (work was sent, the caller let go of the pipe, the worker is stopping).</summary>
    public ManualResetEventSlim ReaderWake { get; } = new(false, spinCount: 1);

    /// <summary>Ready, and not stopping, killed or dead: chunks may go to it. Under the lock.</summary>
    public bool CanTakeChunks => State == WorkerState.Ready;

    /// <summary>The reader thread has a reason to receive: messages can come or the end must be noticed. Under the lock.</summary>
    public bool NeedsReader => State != WorkerState.Ready || InFlight.Count > 0;

    /// <summary>Idle and free for a caller to send one task and receive its reply itself. Under the lock.</summary>
    public bool IsFreeForCaller => State == WorkerState.Ready && InFlight.Count == 0 && Receiver == PipeReceiver.None;

    /// <summary>A death with <paramref name="exitCode"/> is a crash: the pool neither killed it nor saw it stop cleanly.</summary>
    public bool IsCrash(int exitCode) => State != WorkerState.Killed && !(State == WorkerState.Stopping && exitCode == 0);

    /// <summary>The Ready message came: its initializer ran. Under the lock.</summary>
    public void OnReady()
    {
        if (State == WorkerState.Starting)
        {
            MoveTo(WorkerState.Ready);
        }
    }

    /// <summary>Stop was sent, or a send found it gone: no more chunks go to it; its clean exit is no crash. Under the lock.</summary>
    public void OnStopping()
    {
        if (State is WorkerState.Starting or WorkerState.Ready)
        {
            MoveTo(WorkerState.Stopping);
        }
    }

    /// <summary>The pool kills it on purpose: its death is not a crash of the other chunks it held. Under the lock.</summary>
    /// <returns>False when it was killed or settled already.</returns>
    public bool OnKilled()
    {
        if (State is WorkerState.Killed or WorkerState.Gone)
        {
            return false;
        }

        MoveTo(WorkerState.Killed);
        return true;
    }

    /// <summary>The OS says the process ended while its reader was parked: the reader must receive to learn the end. Under the lock.</summary>
    public void OnExitSeen()
    {
        if (State == WorkerState.Ready)
        {
            MoveTo(WorkerState.Exited);
        }
    }

    /// <summary>Its end was settled: it is out of the pool. Under the lock.</summary>
    public void OnGone() => MoveTo(WorkerState.Gone);

    /// <summary>The reader decides to receive (true) or to park; it may take the pipe only when no caller holds it. Under the lock.</summary>
    public bool ReaderTakesPipe()
    {
        if (Receiver == PipeReceiver.Caller)
        {
            return false;
        }

        Receiver = NeedsReader ? PipeReceiver.Reader : PipeReceiver.None;
        return Receiver == PipeReceiver.Reader;
    }

    /// <summary>A caller takes the pipe of this idle worker (<see cref="IsFreeForCaller"/>). Under the lock.</summary>
    public void CallerTakesPipe()
    {
        Debug.Assert(IsFreeForCaller, "A caller takes only the pipe of an idle Ready worker nobody receives on.");
        Receiver = PipeReceiver.Caller;
    }

    /// <summary>The caller lets go of the pipe. Under the lock.</summary>
    public void CallerReleasesPipe()
    {
        Debug.Assert(Receiver == PipeReceiver.Caller, "Only the caller that holds the pipe lets go of it.");
        Receiver = PipeReceiver.None;
    }

    /// <summary>Whoever receives is busy on the pipe and will see what comes: a parked reader needs waking only when nobody is.</summary>
    public bool ReaderParked => Receiver == PipeReceiver.None;

    /// <summary>The one place <see cref="State"/> changes: only along the Design table.</summary>
    private void MoveTo(WorkerState to)
    {
        bool allowed = (State, to) switch
        {
            (WorkerState.Starting, WorkerState.Ready) => true,
            (WorkerState.Starting or WorkerState.Ready, WorkerState.Stopping) => true,
            (WorkerState.Starting or WorkerState.Ready or WorkerState.Stopping or WorkerState.Exited, WorkerState.Killed) => true,
            (WorkerState.Ready, WorkerState.Exited) => true,
            (not WorkerState.Gone, WorkerState.Gone) => true,
            _ => false,
        };
        if (!allowed)
        {
            throw new InvalidOperationException($"Pool worker {Pid}: {State} -> {to} is not a transition of a worker's life.");
        }

        State = to;
    }
}

/// <summary>A pool worker's life (see the table in <see cref="PoolWorker"/>'s Design notes).</summary>
internal enum WorkerState
{
    /// <summary>Launched and sent Init; its initializer has not said Ready yet. Its reader receives.</summary>
    Starting,

    /// <summary>Its initializer ran: it takes chunks. Idle (nothing in flight) its reader parks.</summary>
    Ready,

    /// <summary>It died while idle (the OS said so to its parked reader); its reader receives to settle the end.</summary>
    Exited,

    /// <summary>Stop was sent (retiring, or the pool closing), or a send found it gone: it takes no more chunks and ends by itself.</summary>
    Stopping,

    /// <summary>The pool killed it (SIGKILL): its death is no crash; the chunks it held are settled by their stop reasons or sent again.</summary>
    Killed,

    /// <summary>Its end was settled: reaped, its chunks decided, its slot refilled. Out of the pool.</summary>
    Gone,
}

/// <summary>Who receives on a worker's pipe (see <see cref="PoolWorker"/>'s Design notes).</summary>
internal enum PipeReceiver
{
    /// <summary>Nobody: the reader thread is parked on <see cref="PoolWorker.ReaderWake"/>.</summary>
    None,

    /// <summary>The worker's reader thread.</summary>
    Reader,

    /// <summary>The caller of a synchronous Apply, waiting for its own result on its own thread.</summary>
    Caller,
}
