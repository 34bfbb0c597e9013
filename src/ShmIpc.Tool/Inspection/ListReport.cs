namespace ShmIpc.Tool.Inspection;

// Reports are plain records: the inspector fills them, the text and JSON renderers print them. The JSON
// names are these property names in camelCase; scripts rely on them, so rename with care.

/// <summary>A process named by a segment (creator, owner of an end, producer of a record) and whether it still runs.</summary>
/// <param name="Pid">Its pid.</param>
/// <param name="Alive">True while a process of that pid and start time runs (a pid alone is never trusted, see LAYOUT.md §2).</param>
internal sealed record ProcessRef(int Pid, bool Alive)
{
    /// <summary>"4711 (alive)" or "4711 (dead)".</summary>
    public override string ToString() => $"{Pid} ({(Alive ? "alive" : "dead")})";
}

/// <summary>One line of <c>shmipc list</c>: a segment or a semaphore.</summary>
/// <param name="Name">The name given to Create (without the <c>shmipc.</c> prefix); for a semaphore, its segment's name and <c>.s&lt;i&gt;</c>.</param>
/// <param name="Path">Its file in /dev/shm.</param>
/// <param name="Kind">What it is.</param>
/// <param name="SizeBytes">The file's length.</param>
/// <param name="Creator">The creating process, from the header; null for a semaphore or an unreadable header.</param>
/// <param name="OpenBy">Processes (other than this tool) that map the file or hold its use lock.</param>
/// <param name="AgeSeconds">Seconds since the file was made (its birth time, or its change time where the file system keeps none).</param>
/// <param name="Segment">For a semaphore, the segment it belongs to; null otherwise.</param>
/// <param name="Problem">Why the header could not be read, when it could not.</param>
internal sealed record ListEntry(
    string Name,
    string Path,
    ObjectKind Kind,
    long SizeBytes,
    ProcessRef? Creator,
    IReadOnlyList<int> OpenBy,
    double AgeSeconds,
    string? Segment,
    string? Problem);

/// <summary>What <c>shmipc list</c> prints.</summary>
/// <param name="Objects">Segments first, then semaphores, each by name.</param>
/// <param name="UnreadableProcesses">Processes whose /proc/PID/maps could not be read (another user's, without root): the OpenBy counts may miss them, though their use locks are still seen.</param>
internal sealed record ListReport(IReadOnlyList<ListEntry> Objects, IReadOnlyList<int> UnreadableProcesses);
