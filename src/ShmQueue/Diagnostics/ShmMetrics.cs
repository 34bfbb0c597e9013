using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace ShmIpc.Diagnostics;

/// <summary>
/// The instruments of <see cref="ShmTelemetry"/> (names and units there). Every recording method tests the
/// instrument's <see cref="Instrument.Enabled"/> first: with no listener, a message pays one field load and a branch.
/// A build with <c>-p:ShmNoMetrics=true</c> compiles the per-message recording out: the baseline that
/// <c>bench/metrics-cost.sh</c> measures that cost against.
/// </summary>
internal static class ShmMetrics
{
    public const string KindQueue = "queue";
    public const string KindPipe = "pipe";

    private static readonly Meter s_meter = new(ShmTelemetry.MeterName);

    public static readonly Counter<long> SentMessages = s_meter.CreateCounter<long>("messaging.client.sent.messages", "{message}", "Messages sent into queues and pipes.");
    public static readonly Counter<long> ConsumedMessages = s_meter.CreateCounter<long>("messaging.client.consumed.messages", "{message}", "Messages taken from queues and pipes.");
    public static readonly Counter<long> SentBytes = s_meter.CreateCounter<long>("shmipc.sent.bytes", "By", "Payload bytes sent.");
    public static readonly Counter<long> ConsumedBytes = s_meter.CreateCounter<long>("shmipc.consumed.bytes", "By", "Payload bytes taken.");
    public static readonly Counter<long> WaitsSlept = s_meter.CreateCounter<long>("shmipc.waits.slept", "{wait}", "Waits that went to sleep on a semaphore.");
    public static readonly Counter<long> DeadPeers = s_meter.CreateCounter<long>("shmipc.peers.dead", "{process}", "Dead peers recovered from.");
    public static readonly Counter<long> LostMessages = s_meter.CreateCounter<long>("shmipc.messages.lost", "{message}", "Messages lost with a dead peer.");

    public static readonly Counter<long> TasksStarted = s_meter.CreateCounter<long>("shmipc.pool.tasks.started", "{task}", "Pool tasks (an Apply, a Map chunk) sent to a worker.");
    public static readonly Counter<long> TasksCompleted = s_meter.CreateCounter<long>("shmipc.pool.tasks.completed", "{task}", "Pool tasks that returned results.");
    public static readonly Counter<long> TasksFailed = s_meter.CreateCounter<long>("shmipc.pool.tasks.failed", "{task}", "Pool tasks that failed (an exception, a timeout, a crash, a cancellation).");
    public static readonly Counter<long> TasksCrashed = s_meter.CreateCounter<long>("shmipc.pool.tasks.crashed", "{task}", "Pool tasks whose worker died while it held them.");
    public static readonly Counter<long> TasksRetried = s_meter.CreateCounter<long>("shmipc.pool.tasks.retried", "{task}", "Pool tasks sent again after their worker died.");
    public static readonly Histogram<double> TaskDuration = s_meter.CreateHistogram<double>("shmipc.pool.task.duration", "s", "From sending a pool task to a worker to its result.");
    public static readonly Counter<long> WorkersReplaced = s_meter.CreateCounter<long>("shmipc.pool.workers.replaced", "{process}", "Pool workers replaced by a fresh process.");

    /// <summary>The queues open in this process, for the depth gauge; weakly held, so a queue nobody disposed can still be collected.</summary>
    private static readonly ConditionalWeakTable<ShmQueue, object?> s_queues = new();

    static ShmMetrics()
    {
        s_meter.CreateObservableGauge("shmipc.queue.depth", ObserveDepths, "{message}", "Messages waiting in each open queue.");
    }

    public static void Track(ShmQueue queue) => s_queues.AddOrUpdate(queue, null);

    public static void Untrack(ShmQueue queue) => s_queues.Remove(queue);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RecordSent(string kind, string name, int bytes)
    {
#if !SHM_NO_METRICS
        if (SentMessages.Enabled || SentBytes.Enabled)
        {
            RecordSentSlow(kind, name, bytes);
        }
#endif
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RecordConsumed(string kind, string name, int bytes)
    {
#if !SHM_NO_METRICS
        if (ConsumedMessages.Enabled || ConsumedBytes.Enabled)
        {
            RecordConsumedSlow(kind, name, bytes);
        }
#endif
    }

    public static void RecordSlept(string kind)
    {
        if (WaitsSlept.Enabled)
        {
            WaitsSlept.Add(1, new KeyValuePair<string, object?>("shmipc.kind", kind));
        }
    }

    /// <summary>A dead peer was found and repaired around; <paramref name="lost"/> messages went with it.</summary>
    public static void RecordDeadPeer(string kind, string name, int lost)
    {
        TagList tags = Tags(kind, name);
        DeadPeers.Add(1, tags);
        if (lost > 0)
        {
            LostMessages.Add(lost, tags);
        }
    }

    private static TagList Tags(string kind, string name) => new()
    {
        { "messaging.system", "shmipc" },
        { "messaging.destination.name", name },
        { "shmipc.kind", kind },
    };

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordSentSlow(string kind, string name, int bytes)
    {
        TagList tags = Tags(kind, name);
        SentMessages.Add(1, tags);
        SentBytes.Add(bytes, tags);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordConsumedSlow(string kind, string name, int bytes)
    {
        TagList tags = Tags(kind, name);
        ConsumedMessages.Add(1, tags);
        ConsumedBytes.Add(bytes, tags);
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
}
