using System.Runtime.InteropServices;
using ShmIpc.Internal;

namespace ShmIpc.Hosting;

/// <summary>
/// Makes a child die with its parent, two ways:
/// 1. The parent-death signal (<see cref="ShmQueueContract.RequestParentDeathSignal"/>; Linux: <c>prctl(PR_SET_PDEATHSIG, SIGUSR2)</c>): the kernel signals the child the moment its parent's
///    launcher thread (which lives as long as the parent process, see <see cref="ChildLauncher"/>) ends.
///    The handler removes the shared-memory names the dead parent can no longer remove, then the signal's
///    default action ends the process. A signal of its own, not SIGTERM: when it comes the parent is still
///    exiting (alive in /proc, and possibly still our parent, as the kernel first hands us to a sibling
///    thread), so only the signal itself says "parent gone"; SIGTERM may as well be a Terminate().
/// 2. A watchdog thread that checks the parent's identity (pid and start time, so a reused pid does
///    not fool it) every <see cref="PollInterval"/>: covers any platform without the prctl, or every
///    <see cref="FallbackPollInterval"/> where the signal is armed (a belt to its braces; started once the child is
///    past its start, see <see cref="StartFallbackPoll"/>).
/// Why the poll is rare where the signal is armed: each check reads <c>/proc/PARENT/stat</c>, whose cost grows
/// with the parent's threads (the kernel sums their CPU times), and a pool's parent has a reader thread per
/// worker: Pool(200)'s idle workers polling every 100 ms took a core between them, most of it while others started.
/// </summary>
internal static class ParentWatchdog
{
    /// <summary>How often the watchdog checks the parent where no parent-death signal can be armed.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>How often the watchdog checks the parent where the parent-death signal is armed (it only covers the signal).</summary>
    public static readonly TimeSpan FallbackPollInterval = TimeSpan.FromSeconds(2);

    /// <summary>Exit code of a child that ended because its parent had died (nobody is left to read it).</summary>
    public const int ParentGoneExitCode = 70;

    private static readonly Lock s_cleanupGate = new();
    private static Action? s_cleanup;
    private static PosixSignalRegistration? s_sigterm;
    private static PosixSignalRegistration? s_parentDeath;

    /// <summary>The parent being watched, once <see cref="Arm"/> ran.</summary>
    private static ProcessIdentity? s_parent;

    /// <summary>1 once the poll thread started (at most one per process).</summary>
    private static int s_pollStarted;

    public static void Arm(ProcessIdentity parent, Action cleanup)
    {
        s_cleanup = cleanup;
        PosixSignal? parentDeath = ShmQueueContract.RequestParentDeathSignal();

        // The parent may have died before the prctl took effect: then nobody will signal us.
        if (!ShmQueueContract.IsAlive(parent))
        {
            ParentGone();
        }

        // A SIGTERM from a dying parent (or a Terminate()): clean up if the parent is gone, then let
        // the default action end the process, so the parent (if any) sees "terminated by signal 15".
        // The parent-death signal: remove the names, then let its default action end the process.
        if (parentDeath is PosixSignal signal)
        {
            s_parentDeath = PosixSignalRegistration.Create(signal, static _ =>
            {
                ChildHost.FlushStandardStreams();
                RunCleanup();
            });
        }

        // A SIGTERM (Terminate(), or anyone else's): clean up too if the parent is gone, then end as by SIGTERM.
        s_sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            ChildHost.FlushStandardStreams();
            if (!ShmQueueContract.IsAlive(parent))
            {
                RunCleanup();
            }
        });

        s_parent = parent;
        if (parentDeath is null)
        {
            // Nothing else will tell us: poll from now on.
            StartPolling(PollInterval);
        }
    }

    /// <summary>
    /// Where the parent-death signal is armed, starts the fallback poll (every <see cref="FallbackPollInterval"/>) now; a
    /// worker calls this once it has answered its first task, a process child as its target starts. Starting a thread
    /// cost 2-8 ms of a worker's start on the way to its first result, and the poll only backs up the signal, which is
    /// armed (and the parent checked once) before the child connects; a worker waiting for its first task also looks at
    /// its parent once per sleep slice of its receive (<see cref="Protocol.ChildChannel.ChildSleepSlice"/>). Does nothing where
    /// polling runs already.
    /// </summary>
    public static void StartFallbackPoll()
    {
        if (s_parent is not null && Interlocked.Exchange(ref s_pollStarted, 1) == 0)
        {
            StartPolling(FallbackPollInterval);
        }
    }

    private static void StartPolling(TimeSpan interval)
    {
        s_pollStarted = 1;
        ProcessIdentity parent = s_parent!.Value;
        var thread = new Thread(() =>
        {
            while (ShmQueueContract.IsAlive(parent))
            {
                Thread.Sleep(interval);
            }

            ParentGone();
        })
        {
            IsBackground = true,
            Name = "ShmPool parent watchdog",
        };
        thread.Start();
    }

    private static void ParentGone()
    {
        ChildHost.FlushStandardStreams();
        RunCleanup();
        Environment.Exit(ParentGoneExitCode);
    }

    /// <summary>
    /// Runs the cleanup once. The SIGTERM handler, the watchdog and the main thread may all get here at once;
    /// the late ones wait for the first to finish, so none ends the process while another is half-way.
    /// </summary>
    internal static void RunCleanup()
    {
        lock (s_cleanupGate)
        {
            Action? cleanup = s_cleanup;
            s_cleanup = null;
            try
            {
                cleanup?.Invoke();
            }
#pragma warning disable CA1031 // Best effort on the way out: the process ends either way.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }
}
