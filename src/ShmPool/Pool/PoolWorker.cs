using System.Diagnostics;
using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>
/// The parent's view of one worker process: its pipe, the chunks it holds (in the order sent, so the
/// first is the one running), and the functions it knows. Everything but the receive itself is changed
/// under the pool's lock.
/// </summary>
/// <remarks>
/// One thread at a time receives on the pipe: the reader thread (<see cref="ReaderReceiving"/>) or a
/// caller of a synchronous Apply that sent its task to this idle worker and takes the reply itself
/// (<see cref="CallerReceiving"/>). Each is set under the pool's lock only while the other is clear.
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

    /// <summary>The worker said Ready: its initializer ran.</summary>
    public bool IsReady { get; set; }

    /// <summary>Stop was sent (retiring after MaxTasksPerWorker, or the pool closing): no more chunks go to it.</summary>
    public bool IsStopping { get; set; }

    /// <summary>The pool killed it on purpose (cancel, timeout, terminate): its death is not a crash of the other chunks it held.</summary>
    public bool KilledByPool { get; set; }

    /// <summary>Its death was handled; it is out of the pool.</summary>
    public bool IsGone { get; set; }

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

    /// <summary>Whether the reader spins for the next result (see <see cref="Pool.ReaderSpin"/>); made with the worker.</summary>
    public ReaderSpin? ReaderSpin { get; set; }

    /// <summary>The reader thread is receiving (or about to): no caller may take the pipe.</summary>
    public bool ReaderReceiving { get; set; }

    /// <summary>A caller of Apply is receiving on the pipe; the reader thread stays parked.</summary>
    public bool CallerReceiving { get; set; }

    /// <summary>The OS says the process ended while its reader was parked: the reader must receive to learn the end.</summary>
    public bool ExitSeen { get; set; }

    /// <summary>
    /// The pool's count of results when its last result arrived (an order, not a time: no clock read per result).
    /// The worker that finished most recently is the one most likely still spinning.
    /// </summary>
    public long LastResultOrder { get; set; }

    /// <summary>Set to wake a parked reader thread (work was sent, the caller let go of the pipe, the worker is stopping).</summary>
    public ManualResetEventSlim ReaderWake { get; } = new(false, spinCount: 1);

    /// <summary>The reader thread has a reason to receive: messages can come or the end must be noticed. Under the lock.</summary>
    public bool NeedsReader => !IsReady || IsStopping || KilledByPool || ExitSeen || InFlight.Count > 0;

    /// <summary>Idle and free for a caller to send one task and receive its reply itself. Under the lock.</summary>
    public bool IsFreeForCaller => IsReady && !IsStopping && !KilledByPool && !IsGone && !ExitSeen
        && InFlight.Count == 0 && !ReaderReceiving && !CallerReceiving;
}
