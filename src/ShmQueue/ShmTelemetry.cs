using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ShmIpc;

/// <summary>
/// The names under which ShmIpc reports what it does, for <c>dotnet-counters</c>, OpenTelemetry or a
/// <see cref="MeterListener"/>/<see cref="ActivityListener"/> of your own: one <see cref="Meter"/> and one
/// <see cref="ActivitySource"/>, both named <see cref="MeterName"/>.
/// </summary>
/// <remarks>
/// Instruments (tags: <c>messaging.system</c> = <c>shmipc</c>, <c>messaging.destination.name</c> = the queue's or pipe's name,
/// <c>shmipc.kind</c> = <c>queue</c> or <c>pipe</c>):
/// <list type="bullet">
/// <item><c>messaging.client.sent.messages</c>, <c>messaging.client.consumed.messages</c> ({message}); <c>shmipc.sent.bytes</c>, <c>shmipc.consumed.bytes</c> (By).</item>
/// <item><c>shmipc.waits.slept</c> ({wait}): waits that went to sleep on a semaphore (tag <c>shmipc.kind</c> only).</item>
/// <item><c>shmipc.peers.dead</c> ({process}) and <c>shmipc.messages.lost</c> ({message}): dead peers recovered from, and what they cost.</item>
/// <item><c>shmipc.queue.depth</c> ({message}): an observable gauge of every open queue.</item>
/// <item><c>shmipc.pool.tasks.started</c>, <c>.completed</c>, <c>.failed</c>, <c>.crashed</c>, <c>.retried</c> ({task}; a task is an Apply or a chunk of a Map),
/// <c>shmipc.pool.task.duration</c> (s, histogram), <c>shmipc.pool.workers.replaced</c> ({process}).</item>
/// </list>
/// Activities: <c>shmipc.pool.task</c> for each Apply and Map chunk in the caller, and in the worker a child of it
/// (the trace context crosses the process boundary with the task). With nobody listening, each instrument costs one
/// test of a field per message.
/// </remarks>
public static class ShmTelemetry
{
    /// <summary>"ShmIpc": the name of the meter and of the activity source.</summary>
    public const string MeterName = "ShmIpc";

    /// <summary>The activity source of pool tasks.</summary>
    public static ActivitySource ActivitySource { get; } = new(MeterName);
}
