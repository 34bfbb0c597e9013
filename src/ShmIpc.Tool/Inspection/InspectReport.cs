namespace ShmIpc.Tool.Inspection;

// Reports are plain records: the inspector fills them, the text and JSON renderers print them. The JSON
// names are these property names in camelCase; scripts rely on them, so rename with care.

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
/// <param name="Shutdown"><c>open</c>; <c>drain</c> (shut down: no new messages, consumers take what is left); <c>immediate</c> (shut down, what is left is dropped).</param>
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
    string? Note,
    string Shutdown);

/// <summary>One end of a pipe.</summary>
/// <param name="Index">0 (the creator's end) or 1 (the connector's end).</param>
/// <param name="State"><c>open</c>, <c>shared</c> (several processes hold it, LAYOUT.md §5.7), <c>closed</c>, <c>not connected</c> (end 1 before Connect) or <c>handed over</c> (released for another process, not yet claimed).</param>
/// <param name="Owner">The process that holds an exclusive end (also after it closed); null when none, or when the end is shared.</param>
/// <param name="Holders">A shared end's holders; null for an exclusive end.</param>
/// <param name="PendingShares">A shared end's share tokens given out and not yet redeemed (each counts as a holder).</param>
internal sealed record PipeEnd(int Index, string State, ProcessRef? Owner, IReadOnlyList<ProcessRef>? Holders, int PendingShares);

/// <summary>One direction of a pipe: ring <c>r</c> carries end <c>1 - r</c>'s messages to end <c>r</c>.</summary>
/// <param name="Ring">The ring.</param>
/// <param name="FromEnd">The sending end.</param>
/// <param name="ToEnd">The receiving end.</param>
/// <param name="BacklogBytes">Tail - Head: bytes sent and not yet received.</param>
/// <param name="BacklogMessages">Messages in those bytes.</param>
/// <param name="SleepingReceivers">Registered sleepers on "not empty" (0 or 1).</param>
/// <param name="SleepingSenders">Registered sleepers on "has space" (0 or 1).</param>
/// <param name="SendLockHolder">With a shared sending end: the process sending now, if any.</param>
/// <param name="ReceiveLockHolder">With a shared receiving end: the process receiving now, if any.</param>
internal sealed record PipeDirection(int Ring, int FromEnd, int ToEnd, long BacklogBytes, long BacklogMessages, int SleepingReceivers, int SleepingSenders,
    ProcessRef? SendLockHolder, ProcessRef? ReceiveLockHolder);

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
/// <param name="SideSegment">A side segment's state (a message longer than its host's ring).</param>
internal sealed record InspectReport(
    ListEntry Object,
    bool Published,
    IReadOnlyList<string> Flags,
    int Semaphores,
    IReadOnlyList<string> MissingSemaphores,
    QueueState? Queue,
    PipeState? Pipe,
    string? Problem,
    SideSegmentState? SideSegment = null);
