using System.Diagnostics.Metrics;
using ShmIpc.Hosting;

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

    [TestMethod]
    public void A_child_reads_the_numbers_of_its_command_line_without_a_culture()
    {
        Assert.AreEqual(0UL, ChildHost.ParseDecimal("0", int.MaxValue));
        Assert.AreEqual(4242UL, ChildHost.ParseDecimal("4242", int.MaxValue));
        Assert.AreEqual((ulong)int.MaxValue, ChildHost.ParseDecimal("2147483647", int.MaxValue));
        Assert.AreEqual(ulong.MaxValue, ChildHost.ParseDecimal("18446744073709551615", ulong.MaxValue));
        foreach (string bad in (string[])["", "-1", "+1", "12a", " 1", "2147483648"])
        {
            Assert.ThrowsExactly<FormatException>(() => ChildHost.ParseDecimal(bad, int.MaxValue), $"'{bad}'");
        }

        Assert.ThrowsExactly<FormatException>(() => ChildHost.ParseDecimal("18446744073709551616", ulong.MaxValue));
    }

    [TestMethod]
    public void The_commonest_raw_signatures_get_their_precompiled_invoker_and_others_still_get_one()
    {
        System.Reflection.MethodInfo ints = typeof(TestFunctions).GetMethod(nameof(TestFunctions.Square))!;
        Assert.IsInstanceOfType<RawInvoker<int, int>>(RawInvoker.For(ints, null, ShmMessagePackSerializer.Instance));
        System.Reflection.MethodInfo longs = typeof(WorkerStartFunctions).GetMethod(nameof(WorkerStartFunctions.NextLong))!;
        Assert.IsInstanceOfType<RawInvoker<long, long>>(RawInvoker.For(longs, null, ShmMessagePackSerializer.Instance));
        System.Reflection.MethodInfo doubles = typeof(WorkerStartFunctions).GetMethod(nameof(WorkerStartFunctions.HalfDouble))!;
        Assert.IsInstanceOfType<RawInvoker<double, double>>(RawInvoker.For(doubles, null, ShmMessagePackSerializer.Instance));
        System.Reflection.MethodInfo mixed = typeof(WorkerStartFunctions).GetMethod(nameof(WorkerStartFunctions.Widen))!;
        Assert.IsInstanceOfType<RawInvoker<int, long>>(RawInvoker.For(mixed, null, ShmMessagePackSerializer.Instance), "by reflection");

        ShmPool pool = NewPool(1);
        Assert.AreEqual(9, pool.Apply(TestFunctions.Square, 3));
        Assert.AreEqual(long.MaxValue, pool.Apply(WorkerStartFunctions.NextLong, long.MaxValue - 1));
        Assert.AreEqual(1.25, pool.Apply(WorkerStartFunctions.HalfDouble, 2.5));
        Assert.AreEqual(5_000_000_000L, pool.Apply(WorkerStartFunctions.Widen, 5));
    }

    [TestMethod]
    public void A_worker_starts_its_parent_watchdog_thread_once_its_first_result_is_out()
    {
        ShmPool pool = NewPool(1);
        Assert.AreEqual(9, pool.Apply(TestFunctions.Square, 3), "the first result: after it the worker starts its watchdog's poll");
        Assert.IsTrue(pool.Apply(WorkerStartFunctions.WaitForWatchdogThread, 0), "the worker has a thread named 'ShmPool parent watchdog'");
    }
}

/// <summary>Functions <see cref="WorkerStartTests"/> runs in workers.</summary>
public static class WorkerStartFunctions
{
    public static long NextLong(long x) => x + 1;

    public static double HalfDouble(double x) => x / 2;

    public static long Widen(int x) => x * 1_000_000_000L;

    /// <summary>In the worker: waits (up to the test deadline) until one of its threads is the parent watchdog (by its OS name, which Linux cuts to 15 bytes).</summary>
    public static bool WaitForWatchdogThread(int _) => SpinWait.SpinUntil(HasWatchdogThread, TestSupport.Deadline);

    private static bool HasWatchdogThread()
    {
        foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).Trim() == "ShmPool parent")
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // The thread ended meanwhile.
            }
        }

        return false;
    }

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
