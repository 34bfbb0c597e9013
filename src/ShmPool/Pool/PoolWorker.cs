using System.Diagnostics;
using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>
/// The parent's view of one worker process: its pipe, the chunks it holds (in the order sent, so the
/// first is the one running), and the functions it knows. Everything but the reader thread's receive is
/// changed under the pool's lock.
/// </summary>
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

    /// <summary>When the oldest in-flight chunk started running (sent to an idle worker, or its predecessor finished).</summary>
    public long HeadStarted { get; set; }

    public HashSet<int> DefinedFunctions { get; } = new();

    /// <summary>Chunks sent over its life (for MaxTasksPerWorker).</summary>
    public int TasksAssigned { get; set; }

    public Thread? Reader { get; set; }
}
