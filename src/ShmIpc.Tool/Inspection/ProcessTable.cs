using System.Globalization;
using ShmIpc.Memory;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// Which processes have which /dev/shm files open, read from /proc without touching the files: a process that
/// maps a segment or semaphore shows it in <c>/proc/PID/maps</c>, and every ShmIpc user of a segment holds a
/// shared <c>flock</c> on it, which <c>/proc/locks</c> lists (world-readable, so it also covers processes whose
/// maps this user may not read). Both name the file by device and inode, so a file unlinked and made again
/// under the same name is never confused with the old one.
/// </summary>
/// <remarks>
/// The scan is a snapshot taken before the tool opens anything itself, so the tool never counts itself.
/// The sweep's own test ("an exclusive flock succeeds") would answer the same question exactly, but taking that
/// lock, however briefly, makes a process that opens the segment at that instant fail; reading /proc changes nothing.
/// </remarks>
internal sealed class ProcessTable
{
    private readonly Dictionary<FileKey, SortedSet<int>> _openers;

    private ProcessTable(Dictionary<FileKey, SortedSet<int>> openers, IReadOnlyList<int> unreadable)
    {
        _openers = openers;
        UnreadableProcesses = unreadable;
    }

    /// <summary>Pids whose <c>/proc/PID/maps</c> could not be read (another user's process, when not root).</summary>
    public IReadOnlyList<int> UnreadableProcesses { get; }

    /// <summary>Device and inode of a file, as /proc prints them.</summary>
    internal readonly record struct FileKey(uint Major, uint Minor, ulong Inode);

    /// <summary>Reads every process's maps (the lines that name <paramref name="directory"/>) and /proc/locks.</summary>
    public static ProcessTable Scan(string directory = ShmFiles.Directory, string proc = "/proc")
    {
        var openers = new Dictionary<FileKey, SortedSet<int>>();
        var unreadable = new List<int>();
        string marker = " " + directory.TrimEnd('/') + "/";
        foreach (string entry in Directory.EnumerateDirectories(proc))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            try
            {
                foreach (string line in File.ReadLines(Path.Combine(entry, "maps")))
                {
                    if (line.Contains(marker, StringComparison.Ordinal) && TryParseMapsLine(line, out FileKey key))
                    {
                        Add(openers, key, pid);
                    }
                }
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                // It exited while we looked.
            }
            catch (IOException e) when (e.HResult == 3 /* ESRCH: it exited while we read */)
            {
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                unreadable.Add(pid);
            }
        }

        try
        {
            foreach (string line in File.ReadLines(Path.Combine(proc, "locks")))
            {
                if (TryParseLocksLine(line, out FileKey key, out int pid))
                {
                    Add(openers, key, pid);
                }
            }
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            // No /proc/locks (a restricted container): the maps alone must do.
        }

        return new ProcessTable(openers, unreadable);
    }

    /// <summary>The processes that map <paramref name="path"/> or hold a lock on it, by pid; empty when none (or the file is gone).</summary>
    public IReadOnlyList<int> OpenersOf(string path) =>
        ShmFiles.KeyOf(path) is FileKey key && _openers.TryGetValue(key, out SortedSet<int>? pids) ? [.. pids] : [];

    private static void Add(Dictionary<FileKey, SortedSet<int>> openers, FileKey key, int pid)
    {
        if (!openers.TryGetValue(key, out SortedSet<int>? pids))
        {
            openers[key] = pids = [];
        }

        pids.Add(pid);
    }

    /// <summary>"7f12-7f34 rw-s 00000000 00:1a 4711   /dev/shm/shmipc.jobs": fields 4 and 5 are the device (hex major:minor) and the inode.</summary>
    internal static bool TryParseMapsLine(string line, out FileKey key)
    {
        key = default;
        string[] fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 6
            && TryParseDevice(fields[3], out uint major, out uint minor)
            && ulong.TryParse(fields[4], NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode)
            && (key = new FileKey(major, minor, inode)) != default;
    }

    /// <summary>
    /// "1: FLOCK  ADVISORY  READ  4711 00:1a:12345 0 EOF". Lines of blocked waiters ("1: -> FLOCK ...") are
    /// skipped: a waiter does not hold the file. The pid is the process that took the lock.
    /// </summary>
    internal static bool TryParseLocksLine(string line, out FileKey key, out int pid)
    {
        key = default;
        pid = 0;
        string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 6 || fields[1] == "->")
        {
            return false;
        }

        string[] file = fields[5].Split(':');
        return file.Length == 3
            && int.TryParse(fields[4], NumberStyles.None, CultureInfo.InvariantCulture, out pid)
            && TryParseDevice(file[0] + ":" + file[1], out uint major, out uint minor)
            && ulong.TryParse(file[2], NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode)
            && (key = new FileKey(major, minor, inode)) != default;
    }

    private static bool TryParseDevice(string text, out uint major, out uint minor)
    {
        minor = 0;
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        return uint.TryParse(text.AsSpan(0, Math.Max(colon, 0)), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out major)
            & uint.TryParse(text.AsSpan(colon + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out minor)
            && colon > 0;
    }
}
