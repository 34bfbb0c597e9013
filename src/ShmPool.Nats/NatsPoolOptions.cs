namespace ShmIpc.Nats;

/// <summary>Options of a <see cref="NatsPool"/>: where the server is, the pool's name, its workers and its fault limits.</summary>
public sealed record class NatsPoolOptions
{
    /// <summary>The NATS server, <c>nats://host:4222</c>, or several servers of one cluster separated by commas. Required; JetStream must be on (<c>nats-server -js</c>).</summary>
    public string Url { get; init; } = "";

    /// <summary>The pool's name: every worker started with this name (<see cref="NatsWorker.Run"/>) serves it, on any host. Letters, digits, '-' and '_'.</summary>
    public string PoolName { get; init; } = "";

    /// <summary>
    /// Worker processes the pool starts on this machine (children that end with the pool). Default 0: the pool starts
    /// none and relies on workers started elsewhere, because a pool across hosts usually has its workers there; set it
    /// to <see cref="Environment.ProcessorCount"/> to use this machine too.
    /// </summary>
    public int LocalWorkers { get; init; }

    /// <summary>
    /// How long a worker may go without a sign of life (an in-progress acknowledgement, sent every third of it) before
    /// its task is given to another worker. Default 5 s. Shorter notices a killed worker sooner; longer tolerates
    /// longer network stalls. Set when the pool creates the queue (the first pool of this name on the server).
    /// </summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many more workers a task is given to after the worker holding it is lost; then it fails with <see cref="ShmWorkerCrashedException"/>. Default 2.</summary>
    public int TaskRetries { get; init; } = 2;

    /// <summary>
    /// How long a task waits for a worker to exist while none is alive: then it fails with a <see cref="TimeoutException"/>
    /// naming the pool and the server. Default 30 s.
    /// </summary>
    public TimeSpan NoWorkerTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A task not done this long after it was sent fails with <see cref="TimeoutException"/>. Null (default): no limit.</summary>
    public TimeSpan? TaskTimeout { get; init; }

    /// <summary>How long the constructor tries to reach the server. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many servers of a NATS cluster keep a copy of the pool's queue (JetStream stream replicas, 1 to 5). Default 1:
    /// one server. With 3 on a three-server cluster the pool rides out the loss of any one server. Set when the pool
    /// creates the queue (the first pool of this name on the server).
    /// </summary>
    public int Replicas { get; init; } = 1;

    /// <summary>
    /// How many tasks an <c>Imap</c> or <c>ImapUnordered</c> keeps out at a time (a task is one chunk: one item by
    /// default). Default 256. The input is read only as far as the window reaches past the results read so far, so it
    /// may be huge or endless; a larger window keeps more workers busy when items are short.
    /// </summary>
    public int ImapWindow { get; init; } = 256;

    /// <summary>
    /// True (default): tasks go through the pool's JetStream work queue: stored, acknowledged, redelivered; they survive
    /// a server restart and the caller's reconnect. False: the direct path, for lower latency: each task (an Apply, or a
    /// chunk of a Map or Imap) goes as a core NATS request to a queue group every worker also serves, and the reply
    /// carries the result or the remote exception.
    /// </summary>
    /// <remarks>
    /// Direct tasks are not persisted: a server restart, or the caller's loss of its connection, loses tasks in flight,
    /// and the caller sends them again once it is connected. A worker sends its caller an in-progress ping every third of
    /// <see cref="HeartbeatTimeout"/> while it holds a task (queued or running); a task with no result and no ping for
    /// <see cref="HeartbeatTimeout"/> is sent again (to any worker) up to <see cref="TaskRetries"/> times, then fails with
    /// <see cref="ShmWorkerCrashedException"/>; a slow but live worker keeps its task. With no worker, a task fails after
    /// <see cref="NoWorkerTimeout"/> with a <see cref="TimeoutException"/> naming the pool and the server. Results are at
    /// least once underneath (a task resent after a network stall may run twice) and exactly once to the caller.
    /// Workers serve both paths at once; they must be of a build that has the direct path.
    /// </remarks>
    public bool Durable { get; init; } = true;

    /// <summary>How arguments and results cross: the same serializers as <see cref="ShmPool"/>. Default: <see cref="ShmMessagePackSerializer"/>.</summary>
    public IShmObjectSerializer? Serializer { get; init; }

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Url, nameof(Url));
        Internal.PoolSubjects.Validate(PoolName, nameof(PoolName));
        ArgumentOutOfRangeException.ThrowIfNegative(LocalWorkers, nameof(LocalWorkers));
        ArgumentOutOfRangeException.ThrowIfNegative(TaskRetries, nameof(TaskRetries));
        ArgumentOutOfRangeException.ThrowIfLessThan(Replicas, 1, nameof(Replicas));
        ArgumentOutOfRangeException.ThrowIfLessThan(ImapWindow, 1, nameof(ImapWindow));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Replicas, 5, nameof(Replicas));
        ArgumentOutOfRangeException.ThrowIfLessThan(HeartbeatTimeout, TimeSpan.FromMilliseconds(300), nameof(HeartbeatTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(NoWorkerTimeout, TimeSpan.Zero, nameof(NoWorkerTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero, nameof(ConnectTimeout));
        if (TaskTimeout is TimeSpan t)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(t, TimeSpan.Zero, nameof(TaskTimeout));
        }
    }
}

/// <summary>A live worker of a <see cref="NatsPool"/>, as its last heartbeat told.</summary>
/// <param name="Id">The worker's id (unique per process start).</param>
/// <param name="Host">The machine it runs on.</param>
/// <param name="Pid">Its process id there.</param>
/// <param name="TasksDone">Tasks (an Apply, or a chunk of a Map) it has finished.</param>
public sealed record class NatsWorkerInfo(string Id, string Host, int Pid, long TasksDone);
