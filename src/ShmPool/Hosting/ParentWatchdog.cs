using System.Runtime.InteropServices;
using ShmIpc.Interop;
using ShmIpc.Memory;

namespace ShmIpc.Hosting;

/// <summary>
/// Makes a child die with its parent, two ways:
/// 1. <c>prctl(PR_SET_PDEATHSIG, SIGTERM)</c>: the kernel signals the child the moment its parent's
///    launcher thread (which lives as long as the parent process, see <see cref="ChildLauncher"/>) ends.
///    SIGTERM rather than SIGKILL so the child first removes the shared-memory names the dead parent
///    can no longer remove.
/// 2. A watchdog thread that checks the parent's identity (pid and start time, so a reused pid does
///    not fool it) every <see cref="PollInterval"/>: covers a parent that is not our direct parent and
///    any platform without the prctl.
/// </summary>
internal static class ParentWatchdog
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Exit code of a child that ended because its parent had died (nobody is left to read it).</summary>
    public const int ParentGoneExitCode = 70;

    private static Action? s_cleanup;
    private static PosixSignalRegistration? s_sigterm;

    public static void Arm(ProcessIdentity parent, Action cleanup)
    {
        s_cleanup = cleanup;
        ISharedMemoryPlatform platform = SharedMemoryPlatform.Current;
        if (OperatingSystem.IsLinux())
        {
            _ = ProcessLibc.Prctl(ProcessLibc.PR_SET_PDEATHSIG, ProcessLibc.SIGTERM, 0, 0, 0);
        }

        // The parent may have died before the prctl took effect: then nobody will signal us.
        if (!platform.IsAlive(parent))
        {
            ParentGone();
        }

        // A SIGTERM from a dying parent (or a Terminate()): clean up if the parent is gone, then let
        // the default action end the process, so the parent (if any) sees "terminated by signal 15".
        s_sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            if (!platform.IsAlive(parent))
            {
                RunCleanup();
            }
        });

        var thread = new Thread(() =>
        {
            while (platform.IsAlive(parent))
            {
                Thread.Sleep(PollInterval);
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
        RunCleanup();
        Environment.Exit(ParentGoneExitCode);
    }

    private static void RunCleanup()
    {
        Action? cleanup = Interlocked.Exchange(ref s_cleanup, null);
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
