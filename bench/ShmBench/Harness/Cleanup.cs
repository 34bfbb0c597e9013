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
    private static readonly List<IDisposable> s_owned = new();
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

    /// <summary>
    /// A library object that owns processes and pipes whose names only it knows (ShmProcess, ShmPool): disposed
    /// by <see cref="RunAll"/> if still alive, so Ctrl+C kills its children and removes its pipes. Disposing it
    /// earlier as usual is fine (both dispose twice safely).
    /// </summary>
    public static T Own<T>(T owned)
        where T : IDisposable
    {
        lock (s_lock)
        {
            s_owned.Add(owned);
        }

        if (s_cancelled)
        {
            RunAll();
            throw new OperationCanceledException("The harness was interrupted.");
        }

        return owned;
    }

    /// <summary>Disposes every owned library object, kills every child, unlinks every registered name, removes stale ShmIpc segments. Safe to call twice.</summary>
    public static void RunAll()
    {
        IDisposable[] owned;
        lock (s_lock)
        {
            owned = s_owned.ToArray();
            s_owned.Clear();
        }

        for (int i = owned.Length - 1; i >= 0; i--)
        {
            IDisposable o = owned[i];
            Try(o.Dispose);
        }

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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ObjectDisposedException or AggregateException)
        {
            Console.Error.WriteLine($"cleanup: {e.Message}");
        }
    }
}
