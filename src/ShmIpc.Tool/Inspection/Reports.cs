using System.Text.Json.Serialization;

namespace ShmIpc.Tool.Inspection;

// What the tool reports, as plain records: the inspector fills them, the text and JSON renderers print them.
// The JSON names are these property names in camelCase; scripts rely on them, so rename with care.

/// <summary>What an object in /dev/shm is.</summary>
internal enum ObjectKind
{
    [JsonStringEnumMemberName("queue")]
    Queue,

    [JsonStringEnumMemberName("pipe")]
    Pipe,

    /// <summary>A pipe between a pool (or ShmProcess) parent and one of its children: named <c>shmpool-&lt;pid&gt;-&lt;starttime&gt;-...</c>.</summary>
    [JsonStringEnumMemberName("pool-channel")]
    PoolChannel,

    /// <summary>A bare segment with semaphores only (tests, demos).</summary>
    [JsonStringEnumMemberName("raw")]
    Raw,

    /// <summary>A named semaphore of a segment (<c>sem.shmipc.NAME.s&lt;i&gt;</c>).</summary>
    [JsonStringEnumMemberName("semaphore")]
    Semaphore,

    /// <summary>A segment whose header this build cannot read: foreign, corrupt, of a later layout version or a kind it does not know.</summary>
    [JsonStringEnumMemberName("unknown")]
    Unknown,
}

/// <summary>How an object is doing, worst last.</summary>
internal enum Health
{
    /// <summary>Nothing to do.</summary>
    [JsonStringEnumMemberName("ok")]
    Ok,

    /// <summary>Something went wrong that ShmIpc repairs by itself (a dead producer's record, a dead reader's): worth knowing, no action needed.</summary>
    [JsonStringEnumMemberName("warning")]
    Warning,

    /// <summary>Left behind: its creator is dead and nobody has it open; <c>shmipc clean</c> removes it.</summary>
    [JsonStringEnumMemberName("stale")]
    Stale,

    /// <summary>Cannot be used as it is: a header or control block that does not validate.</summary>
    [JsonStringEnumMemberName("broken")]
    Broken,
}

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

/// <summary>A record of a queue that is in flight: claimed and not yet published, or taken and not yet finished, or the like.</summary>
/// <param name="Position">Its position (a byte counter; the record sits at position &amp; (capacity - 1)).</param>
/// <param name="Status"><c>claimed</c> (a producer is writing it), <c>reading</c> (a consumer took it and has not finished), <c>abandoned</c> (its dead producer's record, skipped), <c>consumed</c> (read, awaiting reclaim).</param>
/// <param name="Length">Payload bytes.</param>
/// <param name="Process">The producer of a claimed record, the reader of one being read; null when the record names none.</param>
internal sealed record QueueRecord(long Position, string Status, int Length, ProcessRef? Process);

/// <summary>The state of a queue (LAYOUT.md §6), read without writing a byte.</summary>
/// <param name="Capacity">Ring bytes.</param>
/// <param name="MaxMessageLength">Longest payload.</param>
/// <param name="Head">Position up to which space is free again.</param>
/// <param name="ReadPosition">Position of the next record a consumer takes.</param>
/// <param name="Tail">Position where the next producer claims.</param>
/// <param name="Depth">Messages waiting to be taken (committed or still being written) at or after ReadPosition.</param>
/// <param name="DepthIsLowerBound">True when the walk stopped early (a very deep queue, or one that moved while read): Depth is at least this.</param>
/// <param name="BytesUsed">Tail - Head: bytes not yet free for producers.</param>
/// <param name="SleepingConsumers">Registered sleepers on "not empty" (a dead sleeper's registration counts until the next producer takes it).</param>
/// <param name="SleepingProducers">Registered sleepers on "has space".</param>
/// <param name="ReclaimLockHolder">The process reclaiming space now, if any.</param>
/// <param name="InFlight">Records claimed but not published, taken but not finished, and the like, oldest first.</param>
/// <param name="Note">Why the walk stopped early, when it did.</param>
internal sealed record QueueState(
    long Capacity,
    int MaxMessageLength,
    long Head,
    long ReadPosition,
    long Tail,
    long Depth,
    bool DepthIsLowerBound,
    long BytesUsed,
    int SleepingConsumers,
    int SleepingProducers,
    ProcessRef? ReclaimLockHolder,
    IReadOnlyList<QueueRecord> InFlight,
    string? Note);

/// <summary>One end of a pipe.</summary>
/// <param name="Index">0 (the creator's end) or 1 (the connector's end).</param>
/// <param name="State"><c>open</c>, <c>closed</c>, <c>not connected</c> (end 1 before Connect) or <c>handed over</c> (released for another process, not yet claimed).</param>
/// <param name="Owner">The process that holds it (also after it closed); null when none.</param>
internal sealed record PipeEnd(int Index, string State, ProcessRef? Owner);

/// <summary>One direction of a pipe: ring <c>r</c> carries end <c>1 - r</c>'s messages to end <c>r</c>.</summary>
/// <param name="Ring">The ring.</param>
/// <param name="FromEnd">The sending end.</param>
/// <param name="ToEnd">The receiving end.</param>
/// <param name="BacklogBytes">Tail - Head: bytes sent and not yet received.</param>
/// <param name="BacklogMessages">Messages in those bytes.</param>
/// <param name="SleepingReceivers">Registered sleepers on "not empty" (0 or 1).</param>
/// <param name="SleepingSenders">Registered sleepers on "has space" (0 or 1).</param>
internal sealed record PipeDirection(int Ring, int FromEnd, int ToEnd, long BacklogBytes, long BacklogMessages, int SleepingReceivers, int SleepingSenders);

/// <summary>The state of a pipe (LAYOUT.md §5), read without writing a byte.</summary>
internal sealed record PipeState(int Capacity, int MaxMessageLength, bool Duplex, IReadOnlyList<PipeEnd> Ends, IReadOnlyList<PipeDirection> Directions, string? Note);

/// <summary>What <c>shmipc inspect NAME</c> prints: the segment, and its kind's state when the header and control block validate.</summary>
/// <param name="Object">The segment as <c>list</c> shows it.</param>
/// <param name="Flags">Header flags in words: <c>group-access</c>, <c>keep</c>.</param>
/// <param name="Semaphores">How many named semaphores it has, and which of them are missing.</param>
/// <param name="MissingSemaphores">Names of semaphores the header promises that do not exist.</param>
/// <param name="Queue">A queue's state.</param>
/// <param name="Pipe">A pipe's (or pool channel's) state.</param>
/// <param name="Problem">Why the segment could not be read, when it could not.</param>
/// <param name="Published">False while the creator has not published the header (magic still zero): it is being made, or its creator died making it.</param>
internal sealed record InspectReport(
    ListEntry Object,
    bool Published,
    IReadOnlyList<string> Flags,
    int Semaphores,
    IReadOnlyList<string> MissingSemaphores,
    QueueState? Queue,
    PipeState? Pipe,
    string? Problem);

/// <summary>One object's verdict in <c>shmipc doctor</c>.</summary>
/// <param name="Name">The object.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Health">How it is doing.</param>
/// <param name="Findings">One sentence per problem; empty when healthy.</param>
internal sealed record DoctorEntry(string Name, ObjectKind Kind, Health Health, IReadOnlyList<string> Findings);

/// <summary>What <c>shmipc doctor</c> prints.</summary>
/// <param name="Healthy">True when every object is <see cref="Health.Ok"/>.</param>
/// <param name="Objects">Each object's verdict.</param>
/// <param name="UnreadableProcesses">As in <see cref="ListReport"/>.</param>
internal sealed record DoctorReport(bool Healthy, IReadOnlyList<DoctorEntry> Objects, IReadOnlyList<int> UnreadableProcesses);

/// <summary>One object <c>shmipc clean</c> removed (or, with --dry-run, would remove).</summary>
/// <param name="Name">The segment's name, or the semaphore's.</param>
/// <param name="Kind"><see cref="ObjectKind.Semaphore"/> for an orphan semaphore, else the segment's kind.</param>
/// <param name="Reason">Why it is stale.</param>
internal sealed record CleanedObject(string Name, ObjectKind Kind, string Reason);

/// <summary>One object <c>shmipc clean</c> left, and why.</summary>
internal sealed record KeptObject(string Name, string Reason);

/// <summary>What <c>shmipc clean</c> prints.</summary>
/// <param name="DryRun">True when nothing was removed.</param>
/// <param name="Removed">What was (or would be) removed.</param>
/// <param name="Kept">Segments left in place, each with the reason.</param>
internal sealed record CleanReport(bool DryRun, IReadOnlyList<CleanedObject> Removed, IReadOnlyList<KeptObject> Kept);
