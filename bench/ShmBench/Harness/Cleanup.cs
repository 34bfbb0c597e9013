using System.Runtime.InteropServices;

namespace ShmIpc.Bench.Harness;

/// <summary>
/// Everything the harness made that must not outlive it: child processes (killed with their whole
/// tree), segments and semaphores (unlinked by name), socket files and temp directories. Runs on
/// normal exit, on an exception, and on SIGINT/SIGTERM/SIGHUP; after a signal, anything registered
/// later is removed at once and the caller is told to stop.
/// </summary>
internal static class Cleanup
{
    private static readonly Lock s_lock = new();
    private static readonly HashSet<string> s_segments = new(StringComparer.Ordinal);
    private static readonly HashSet<string> s_paths = new(StringComparer.Ordinal);
    private static readonly List<PosixSignalRegistration> s_signals = new();
    private static volatile bool s_cancelled;

    /// <summary>True once a signal asked us to stop.</summary>
    public static bool Cancelled => s_cancelled;

    /// <summary>Hooks SIGINT (Ctrl+C), SIGTERM and SIGHUP: clean up, then let the process end with the usual status.</summary>
    public static void InstallSignalHandlers()
    {
        foreach (PosixSignal signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP })
        {
            s_signals.Add(PosixSignalRegistration.Create(signal, static context =>
            {
                s_cancelled = true;
                Console.Error.WriteLine();
                Console.Error.WriteLine($"{context.Signal}: stopping children and removing shared memory ...");
                RunAll();

                // context.Cancel stays false: the runtime ends the process as the signal asks.
            }));
        }
    }

    /// <summary>A segment (user-visible name) whose file and semaphores we must unlink.</summary>
    public static string Segment(string name)
    {
        lock (s_lock)
        {
            s_segments.Add(name);
        }

        ThrowIfCancelled();
        return name;
    }

    /// <summary>A file or directory (socket, temp dir) to delete.</summary>
    public static string Path(string path)
    {
        lock (s_lock)
        {
            s_paths.Add(path);
        }

        ThrowIfCancelled();
        return path;
    }

    /// <summary>Kills every child, unlinks every registered name, removes stale ShmIpc segments. Safe to call twice.</summary>
    public static void RunAll()
    {
        ChildProcesses.KillAll();
        string[] segments, paths;
        lock (s_lock)
        {
            segments = s_segments.ToArray();
            paths = s_paths.ToArray();
            s_segments.Clear();
            s_paths.Clear();
        }

        foreach (string name in segments)
        {
            Try(() => ShmMaintenance.Unlink(name));
        }

        foreach (string path in paths)
        {
            Try(() =>
            {
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
                else
                {
                    File.Delete(path);
                }
            });
        }

        Try(() => ShmMaintenance.RemoveStaleSegments());
    }

    private static void ThrowIfCancelled()
    {
        if (s_cancelled)
        {
            RunAll();
            throw new OperationCanceledException("The harness was interrupted.");
        }
    }

    private static void Try(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            Console.Error.WriteLine($"cleanup: {e.Message}");
        }
    }
}
