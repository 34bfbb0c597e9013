using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace ShmIpc.Diagnostics;

/// <summary>
/// The instruments of <see cref="ShmTelemetry"/> (names and units there). Every recording method tests the
/// instrument's <see cref="Instrument.Enabled"/> first: with no listener, a message pays two field loads and two branches.
/// A build with <c>-p:ShmNoMetrics=true</c> compiles the per-message recording out: the baseline that
/// <c>bench/metrics-cost.sh</c> measures that cost against.
/// </summary>
/// <remarks>
/// Design: the instruments live in one <see cref="Instruments"/> object, created on first use and published once
/// (<see cref="s_instruments"/>, written under <see cref="s_createGate"/> by a release store, read by plain loads: the
/// reader only dereferences what it loaded, and a reader that sees null takes the slow path, which re-reads under the gate).
/// Why not static readonly fields as before: creating the first <see cref="Meter"/> of a process creates the runtime's
/// MetricsEventSource, 20-30 ms on this 2-core machine, a quarter of a pool worker's start to Ready. A child process
/// (<see cref="Defer"/>, called by ShmPool's child host before anything else) leaves them uncreated until its host calls
/// <see cref="CreateInBackground"/> once the child is ready and has answered its first task; until then nothing is counted
/// in that child, which loses nothing a listener could see: a <see cref="MeterListener"/> (started in an initializer, say)
/// is told of instruments created after it started, and no listener can hold an instrument that does not exist yet.
/// Elsewhere the first recording creates them at once, as the static constructor did.
/// </remarks>
internal static class ShmMetrics
{
    public const string KindQueue = "queue";
    public const string KindPipe = "pipe";

    /// <summary>Null until created; then the one set of instruments of this process (written once, under <see cref="s_createGate"/>).</summary>
    private static Instruments? s_instruments;

    /// <summary>True in a child process until its host lets the instruments be created (set before any other thread runs).</summary>
    private static bool s_deferred;

    private static readonly Lock s_createGate = new();

    /// <summary>The queues open in this process, for the depth gauge; weakly held, so a queue nobody disposed can still be collected.</summary>
    private static readonly ConditionalWeakTable<ShmQueue, object?> s_queues = new();

    public static Counter<long> TasksStarted => Created.TasksStarted;

    public static Counter<long> TasksCompleted => Created.TasksCompleted;

    public static Counter<long> TasksFailed => Created.TasksFailed;

    public static Counter<long> TasksCrashed => Created.TasksCrashed;

    public static Counter<long> TasksRetried => Created.TasksRetried;

    public static Histogram<double> TaskDuration => Created.TaskDuration;

    public static Counter<long> WorkersReplaced => Created.WorkersReplaced;

    /// <summary>The instruments, created now if they were not (also in a child that deferred them: a caller that needs one gets it).</summary>
    private static Instruments Created => s_instruments ?? Create();

    /// <summary>
    /// This process is a child whose start must not wait for the instruments (see the remarks): recordings find none and count
    /// nothing until <see cref="CreateInBackground"/>. Call before any other ShmIpc code runs.
    /// </summary>
    public static void Defer() => s_deferred = true;

    /// <summary>Ends <see cref="Defer"/>: creates the instruments on a background thread (at once, on this one, if no thread can be started).</summary>
    public static void CreateInBackground()
    {
        if (s_instruments is not null)
        {
            return;
        }

        var thread = new Thread(static () => Create()) { IsBackground = true, Name = "ShmIpc metrics" };
        thread.Start();
    }

    public static void Track(ShmQueue queue) => s_queues.AddOrUpdate(queue, null);

    public static void Untrack(ShmQueue queue) => s_queues.Remove(queue);

    /// <summary>The instruments if they exist or may be created now (null in a child before <see cref="CreateInBackground"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Instruments? CreateUnlessDeferred() => s_deferred ? s_instruments : Create();

    private static Instruments Create()
    {
        lock (s_createGate)
        {
            if (s_instruments is Instruments existing)
            {
                return existing;
            }

            var created = new Instruments();
            Volatile.Write(ref s_instruments, created); // pairs with the plain loads of readers, which dereference what they loaded
            s_deferred = false;
            return created;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RecordSent(string kind, string name, int bytes)
    {
#if !SHM_NO_METRICS
        if ((s_instruments ?? CreateUnlessDeferred()) is Instruments i && (i.SentMessages.Enabled || i.SentBytes.Enabled))
        {
            RecordSentSlow(i, kind, name, bytes);
        }
#endif
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RecordConsumed(string kind, string name, int bytes)
    {
#if !SHM_NO_METRICS
        if ((s_instruments ?? CreateUnlessDeferred()) is Instruments i && (i.ConsumedMessages.Enabled || i.ConsumedBytes.Enabled))
        {
            RecordConsumedSlow(i, kind, name, bytes);
        }
#endif
    }

    /// <summary>
    /// The instruments for an endpoint to keep in a field (null while deferred): a message then tests
    /// <see cref="Instruments.SentEnabled"/> through that field, with no static access (a class-init check in ReadyToRun code).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Instruments? Current() => s_instruments ?? CreateUnlessDeferred();

    public static void RecordSlept(string kind)
    {
        if ((s_instruments ?? CreateUnlessDeferred()) is Instruments i && i.WaitsSlept.Enabled)
        {
            i.WaitsSlept.Add(1, new KeyValuePair<string, object?>("shmipc.kind", kind));
        }
    }

    /// <summary>A dead peer was found and repaired around; <paramref name="lost"/> messages went with it.</summary>
    public static void RecordDeadPeer(string kind, string name, int lost)
    {
        if ((s_instruments ?? CreateUnlessDeferred()) is not Instruments i)
        {
            return;
        }

        TagList tags = Tags(kind, name);
        i.DeadPeers.Add(1, tags);
        if (lost > 0)
        {
            i.LostMessages.Add(lost, tags);
        }
    }

    private static TagList Tags(string kind, string name) => new()
    {
        { "messaging.system", "shmipc" },
        { "messaging.destination.name", name },
        { "shmipc.kind", kind },
    };

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordSentSlow(Instruments i, string kind, string name, int bytes)
    {
        TagList tags = Tags(kind, name);
        i.SentMessages.Add(1, tags);
        i.SentBytes.Add(bytes, tags);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordConsumedSlow(Instruments i, string kind, string name, int bytes)
    {
        TagList tags = Tags(kind, name);
        i.ConsumedMessages.Add(1, tags);
        i.ConsumedBytes.Add(bytes, tags);
    }

    private static IEnumerable<Measurement<long>> ObserveDepths()
    {
        foreach ((ShmQueue queue, object? _) in s_queues)
        {
            long depth;
            try
            {
                depth = queue.Count;
            }
            catch (ObjectDisposedException)
            {
                continue; // disposed between the listing and the read
            }

            yield return new Measurement<long>(depth, Tags(KindQueue, queue.Name));
        }
    }

    /// <summary>The meter and its instruments: one per process, made by <see cref="Create"/>.</summary>
#pragma warning disable CA1001 // The meter lives as long as the process, as it did in a static field.
    internal sealed class Instruments
#pragma warning restore CA1001
    {
        private readonly Meter _meter = new(ShmTelemetry.MeterName);

        public Instruments()
        {
            SentMessages = _meter.CreateCounter<long>("messaging.client.sent.messages", "{message}", "Messages sent into queues and pipes.");
            ConsumedMessages = _meter.CreateCounter<long>("messaging.client.consumed.messages", "{message}", "Messages taken from queues and pipes.");
            SentBytes = _meter.CreateCounter<long>("shmipc.sent.bytes", "By", "Payload bytes sent.");
            ConsumedBytes = _meter.CreateCounter<long>("shmipc.consumed.bytes", "By", "Payload bytes taken.");
            WaitsSlept = _meter.CreateCounter<long>("shmipc.waits.slept", "{wait}", "Waits that went to sleep on a semaphore.");
            DeadPeers = _meter.CreateCounter<long>("shmipc.peers.dead", "{process}", "Dead peers recovered from.");
            LostMessages = _meter.CreateCounter<long>("shmipc.messages.lost", "{message}", "Messages lost with a dead peer.");
            TasksStarted = _meter.CreateCounter<long>("shmipc.pool.tasks.started", "{task}", "Pool tasks (an Apply, a Map chunk) sent to a worker.");
            TasksCompleted = _meter.CreateCounter<long>("shmipc.pool.tasks.completed", "{task}", "Pool tasks that returned results.");
            TasksFailed = _meter.CreateCounter<long>("shmipc.pool.tasks.failed", "{task}", "Pool tasks that failed (an exception, a timeout, a crash, a cancellation).");
            TasksCrashed = _meter.CreateCounter<long>("shmipc.pool.tasks.crashed", "{task}", "Pool tasks whose worker died while it held them.");
            TasksRetried = _meter.CreateCounter<long>("shmipc.pool.tasks.retried", "{task}", "Pool tasks sent again after their worker died.");
            TaskDuration = _meter.CreateHistogram<double>("shmipc.pool.task.duration", "s", "From sending a pool task to a worker to its result.");
            WorkersReplaced = _meter.CreateCounter<long>("shmipc.pool.workers.replaced", "{process}", "Pool workers replaced by a fresh process.");
            _meter.CreateObservableGauge("shmipc.queue.depth", ObserveDepths, "{message}", "Messages waiting in each open queue.");
        }

        /// <summary>A listener takes sent messages or bytes (what <see cref="RecordSent"/> tests).</summary>
        public bool SentEnabled => SentMessages.Enabled || SentBytes.Enabled;

        /// <summary>A listener takes consumed messages or bytes (what <see cref="RecordConsumed"/> tests).</summary>
        public bool ConsumedEnabled => ConsumedMessages.Enabled || ConsumedBytes.Enabled;

        public Counter<long> SentMessages { get; }

        public Counter<long> ConsumedMessages { get; }

        public Counter<long> SentBytes { get; }

        public Counter<long> ConsumedBytes { get; }

        public Counter<long> WaitsSlept { get; }

        public Counter<long> DeadPeers { get; }

        public Counter<long> LostMessages { get; }

        public Counter<long> TasksStarted { get; }

        public Counter<long> TasksCompleted { get; }

        public Counter<long> TasksFailed { get; }

        public Counter<long> TasksCrashed { get; }

        public Counter<long> TasksRetried { get; }

        public Histogram<double> TaskDuration { get; }

        public Counter<long> WorkersReplaced { get; }
    }
}
