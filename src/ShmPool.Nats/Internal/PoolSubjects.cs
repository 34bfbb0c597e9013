namespace ShmIpc.Nats.Internal;

/// <summary>
/// The NATS names of one pool: one JetStream stream holds both its tasks and its results.
/// </summary>
/// <remarks>
/// <code>
/// stream  SHMPOOL_{pool}     work-queue retention, file storage, subjects shmpool.{pool}.t and shmpool.{pool}.r.*
///   consumer "workers"        filter shmpool.{pool}.t: every worker process of the pool pulls from it, one task at a time;
///                             AckWait = the heartbeat lapse, MaxDeliver = 1 + retries
///   consumer "r-{caller}"     filter shmpool.{pool}.r.{caller}: the results for one NatsPool instance
/// core    shmpool.{pool}.w    each worker's heartbeat (id, host, pid, tasks done) once a second: NatsPool.Workers
/// core    shmpool.{pool}.d.{caller}  a worker's results sent straight to the caller (request-reply: the caller's reply
///                             confirms it has them; without one the worker stores them on shmpool.{pool}.r.{caller})
/// core    shmpool.{pool}.s.{caller}  a worker took a task: which worker, which delivery (the caller watches that worker)
/// core    shmpool.{pool}.q    direct tasks (NatsPoolOptions.Durable = false): core requests to queue group "workers",
///                             reply subject shmpool.{pool}.c.{caller}.{task} for the result and in-progress pings
/// core    $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SHMPOOL_{pool}.workers: a task whose retries are spent
/// </code>
/// A work-queue stream deletes a message once acknowledged, and allows several consumers only with disjoint filters:
/// the task consumer and each caller's result consumer are disjoint by construction.
/// </remarks>
internal sealed class PoolSubjects
{
    public const string WorkerConsumer = "workers";

    public PoolSubjects(string poolName)
    {
        Validate(poolName);
        Pool = poolName;
        Stream = "SHMPOOL_" + poolName;
        Tasks = $"shmpool.{poolName}.t";
        ResultsAll = $"shmpool.{poolName}.r.*";
        Heartbeats = $"shmpool.{poolName}.w";
        MaxDeliveriesAdvisory = $"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{Stream}.{WorkerConsumer}";
    }

    public string Pool { get; }

    public string Stream { get; }

    public string Tasks { get; }

    public string ResultsAll { get; }

    public string Heartbeats { get; }

    public string MaxDeliveriesAdvisory { get; }

    public string Results(string callerId) => $"shmpool.{Pool}.r.{callerId}";

    /// <summary>Core subject where a worker sends a task's results straight to its caller, which replies once it has them.</summary>
    public string Direct(string callerId) => $"shmpool.{Pool}.d.{callerId}";

    /// <summary>Core subject of direct (non-durable) tasks: every worker subscribes in queue group <see cref="WorkerConsumer"/>.</summary>
    public string DirectTasks => $"shmpool.{Pool}.q";

    /// <summary>Where the replies to direct task <paramref name="task"/> go (result, pings, "no responders"); null: the wildcard over all of the caller's tasks.</summary>
    public string DirectReply(string callerId, long? task) => $"shmpool.{Pool}.c.{callerId}.{(task is long t ? t.ToString(System.Globalization.CultureInfo.InvariantCulture) : "*")}";

    /// <summary>Core subject where a worker tells a caller it took one of its tasks (task, worker id, host, pid, delivery count).</summary>
    public string Taken(string callerId) => $"shmpool.{Pool}.s.{callerId}";

    /// <summary>Pool and queue names become subject tokens and stream names: letters, digits, '-' and '_' only.</summary>
    public static void Validate(string name, string paramName = "poolName")
    {
        ArgumentException.ThrowIfNullOrEmpty(name, paramName);
        if (name.Length > 64 || !name.All(static c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw new ArgumentException($"The name '{name}' must be 1 to 64 ASCII letters, digits, '-' or '_' (it becomes a NATS subject token and stream name).", paramName);
        }
    }
}

/// <summary>The header names of task and result messages.</summary>
internal static class PoolHeaders
{
    /// <summary>The caller's id: where the worker publishes the result (<see cref="PoolSubjects.Results"/>).</summary>
    public const string Caller = "Shm-Caller";

    /// <summary>The task's number within its caller.</summary>
    public const string Task = "Shm-Task";

    /// <summary>JetStream's de-duplication id: a publish retried after a lost acknowledgement is stored once.</summary>
    public const string MsgId = "Nats-Msg-Id";

    /// <summary>A direct task's heartbeat timeout in milliseconds: the worker pings its caller every third of it.</summary>
    public const string Beat = "Shm-Beat";

    /// <summary>Marks a worker's in-progress ping for a direct task (no body).</summary>
    public const string Progress = "Shm-Progress";
}
