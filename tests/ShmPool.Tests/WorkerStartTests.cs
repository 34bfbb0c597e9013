using System.Diagnostics.Metrics;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// What a worker leaves out on its way to Ready (issue 16) still works once it is up: ShmIpc's instruments, deferred in
/// every child, exist and count after the worker's first result; the default serializer is still recognized by name.
/// </summary>
[TestClass]
public sealed class WorkerStartTests : PoolTestBase
{
    [TestMethod]
    public void The_default_serializer_name_starts_with_the_prefix_a_child_tests()
    {
        string name = typeof(ShmMessagePackSerializer).AssemblyQualifiedName!;
        Assert.IsTrue(name.StartsWith(SerializerFactory.DefaultSerializerNamePrefix, StringComparison.Ordinal), name);
        Assert.AreSame(ShmMessagePackSerializer.Instance, SerializerFactory.Create(name));
    }

    [TestMethod]
    public void A_worker_counts_its_queue_messages_once_its_first_result_is_out()
    {
        ShmPool pool = NewPool(1);
        Assert.AreEqual(9, pool.Apply(TestFunctions.Square, 3), "the first result: after it the worker makes its instruments");
        string queue = $"t{Environment.ProcessId}-wmetrics-{Guid.NewGuid():N}";
        (long sent, long consumed) = pool.Apply(WorkerStartFunctions.CountQueueMessages, queue);
        Assert.AreEqual(3, sent, "messages the worker enqueued, as its own MeterListener saw them");
        Assert.AreEqual(2, consumed, "messages the worker dequeued");
    }
}

/// <summary>Functions <see cref="WorkerStartTests"/> runs in workers.</summary>
public static class WorkerStartFunctions
{
    /// <summary>
    /// In the worker: listens to ShmIpc's meter, waits (up to the test deadline) for its instruments to be published, then
    /// enqueues 3 and dequeues 2 messages on a new queue named <paramref name="name"/>; returns what the listener counted.
    /// </summary>
    public static (long Sent, long Consumed) CountQueueMessages(string name)
    {
        long sent = 0;
        long consumed = 0;
        using var published = new ManualResetEventSlim();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ShmTelemetry.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
                if (instrument.Name == "messaging.client.consumed.messages")
                {
                    published.Set();
                }
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "messaging.destination.name" && (string?)tag.Value == name)
                {
                    if (instrument.Name == "messaging.client.sent.messages")
                    {
                        Interlocked.Add(ref sent, value);
                    }
                    else if (instrument.Name == "messaging.client.consumed.messages")
                    {
                        Interlocked.Add(ref consumed, value);
                    }
                }
            }
        });
        listener.Start();
        if (!published.Wait(TestSupport.Deadline))
        {
            throw new TimeoutException("ShmIpc's instruments were not created in the worker after its first result.");
        }

        using (ShmQueue queue = ShmQueue.Create(name))
        {
            queue.Enqueue(new byte[8]);
            queue.Enqueue(new byte[8]);
            queue.Enqueue(new byte[8]);
            _ = queue.Dequeue();
            _ = queue.Dequeue();
        }

        return (Interlocked.Read(ref sent), Interlocked.Read(ref consumed));
    }
}
