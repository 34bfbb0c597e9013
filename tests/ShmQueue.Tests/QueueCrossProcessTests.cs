using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

[TestClass]
public sealed class QueueCrossProcessTests
{
    private static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    private static string S(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static List<(int Producer, int Sequence)> ReadRecords(string file)
    {
        byte[] bytes = File.ReadAllBytes(file);
        var records = new List<(int, int)>(bytes.Length / 8);
        for (int i = 0; i + 8 <= bytes.Length; i += 8)
        {
            records.Add((BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i)), BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i + 4))));
        }

        return records;
    }

    /// <summary>
    /// 4 producer processes and 4 consumer processes, random lengths, checksums and per-producer order checked
    /// in the consumers; every message arrives exactly once. CI runs 4 x 25,000; set SHMIPC_STRESS=1 for 4 x 250,000 (1M).
    /// </summary>
    [TestMethod]
    [TestCategory("Stress")]
    public void Four_producer_and_four_consumer_processes_deliver_every_message_exactly_once()
    {
        int perProducer = Environment.GetEnvironmentVariable("SHMIPC_STRESS") == "1" ? 250_000 : 25_000;
        const int Producers = 4, Consumers = 4, MaxPayload = 200;
        string name = TestNames.Unique("q4x4");
        string dir = Directory.CreateTempSubdirectory("shmipc-q4x4-").FullName;
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 16 });
        using var children = new ChildProcesses();
        var consumers = new List<ChildProcess>();
        var producers = new List<ChildProcess>();
        try
        {
            for (int c = 0; c < Consumers; c++)
            {
                consumers.Add(children.Start("queue-consume", name, S(MaxPayload), Path.Combine(dir, $"c{c}.bin")));
            }

            for (int p = 0; p < Producers; p++)
            {
                producers.Add(children.Start("queue-produce", name, S(p), S(perProducer), S(MaxPayload)));
            }

            foreach (ChildProcess producer in producers)
            {
                producer.WaitForLine("DONE", TimeSpan.FromSeconds(240));
                Assert.AreEqual(0, producer.WaitForExit(ChildStart), producer.StandardError);
            }

            // Stop markers queue up behind every data message, so each consumer drains its share first.
            for (int c = 0; c < Consumers; c++)
            {
                queue.Enqueue(QueueMessages.Stop());
            }

            foreach (ChildProcess consumer in consumers)
            {
                Assert.AreEqual(0, consumer.WaitForExit(TimeSpan.FromSeconds(120)), consumer.StandardError);
            }

            var seen = new int[Producers, perProducer];
            int total = 0;
            for (int c = 0; c < Consumers; c++)
            {
                foreach ((int p, int s) in ReadRecords(Path.Combine(dir, $"c{c}.bin")))
                {
                    seen[p, s]++;
                    total++;
                }
            }

            Assert.AreEqual(Producers * perProducer, total, "message count");
            for (int p = 0; p < Producers; p++)
            {
                for (int s = 0; s < perProducer; s++)
                {
                    Assert.AreEqual(1, seen[p, s], $"producer {p} message {s}");
                }
            }

            Assert.AreEqual(0, queue.Count);
        }
        finally
        {
            children.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void A_producer_killed_between_claiming_and_committing_costs_one_message_and_milliseconds()
    {
        string name = TestNames.Unique("qclaim");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 8192 });
        queue.Enqueue([1]);
        using (ChildProcess child = ChildProcess.Start("queue-claim-hold", name, "50"))
        {
            Assert.AreEqual("CLAIMED", child.ReadLine(ChildStart));
            queue.Enqueue([2]);
            queue.Enqueue([3]);
            CollectionAssert.AreEqual(new byte[] { 1 }, queue.Dequeue(TimeSpan.FromSeconds(5)));

            // While the claimer lives, its record is waited for, never overtaken.
            Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(300)), "a live producer's unfinished record must not be skipped");
            child.Kill9();
        }

        var clock = Stopwatch.StartNew();
        CollectionAssert.AreEqual(new byte[] { 2 }, queue.Dequeue(TimeSpan.FromSeconds(10)));
        TestContext.WriteLine($"recovered from the dead producer in {clock.Elapsed.TotalMilliseconds:0.0} ms");
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"recovery took {clock.Elapsed}");
        CollectionAssert.AreEqual(new byte[] { 3 }, queue.Dequeue(TimeSpan.FromSeconds(5)));
        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    public void A_consumer_killed_while_reading_loses_that_message_only_and_its_space_comes_back()
    {
        string name = TestNames.Unique("qread");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096, MaxMessageLength = 64 });
        queue.Enqueue(new byte[64]);
        queue.Enqueue([7]);
        using (ChildProcess child = ChildProcess.Start("queue-read-hold", name))
        {
            Assert.AreEqual("TAKEN 64", child.ReadLine(ChildStart));

            // The reader is stalled, not dead: other consumers go on past its record.
            CollectionAssert.AreEqual(new byte[] { 7 }, queue.Dequeue(TimeSpan.FromSeconds(5)));
            child.Kill9();
        }

        // Fill the ring several times over: producers need the dead reader's space back.
        for (int i = 0; i < 500; i++)
        {
            queue.Enqueue(BitConverter.GetBytes(i), TimeSpan.FromSeconds(10));
            Assert.AreEqual(i, BitConverter.ToInt32(queue.Dequeue(TimeSpan.FromSeconds(10))));
        }
    }

    [TestMethod]
    public void Producers_killed_mid_stream_never_wedge_the_queue_or_lose_anything_but_their_last_message()
    {
        string name = TestNames.Unique("qkillp");
        const int MaxPayload = 100, SteadyCount = 20_000, Kills = 4;
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 14 });
        var received = new Dictionary<int, List<int>>();
        using var stop = new CancellationTokenSource();
        Task consumer = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (queue.TryDequeue(out byte[]? message, TimeSpan.FromMilliseconds(50)))
                {
                    (int p, int s) = QueueMessages.Verify(message, MaxPayload);
                    lock (received)
                    {
                        (received.TryGetValue(p, out List<int>? list) ? list : received[p] = new List<int>()).Add(s);
                    }
                }
            }
        });

        int Received(int producer)
        {
            lock (received)
            {
                return received.TryGetValue(producer, out List<int>? list) ? list.Count : 0;
            }
        }

        using (ChildProcess steady = ChildProcess.Start("queue-produce", name, "0", S(SteadyCount), S(MaxPayload)))
        {
            var random = new Random(42);
            for (int k = 1; k <= Kills; k++)
            {
                using ChildProcess victim = ChildProcess.StartReady("queue-produce", name, S(k), "-1", S(MaxPayload));
                int target = random.Next(100, 2000);
                long deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
                while (Received(k) < target && Stopwatch.GetTimestamp() < deadline)
                {
                    Thread.Yield();
                }

                Assert.IsTrue(Received(k) >= target, $"victim {k} delivered {Received(k)} of {target} in 30 s; queue: {queue.Ring.DescribeState()}; consumer: {consumer.Status} {consumer.Exception?.InnerException?.Message}");
                victim.Kill9();
            }

            steady.WaitForLine("DONE", TimeSpan.FromSeconds(120));
        }

        // The queue still flows after the kills.
        byte[] last = new byte[QueueMessages.HeaderLength + MaxPayload];
        queue.Enqueue(last.AsSpan(0, QueueMessages.Write(last, 99, 0, MaxPayload)));
        long end = Stopwatch.GetTimestamp() + (60 * Stopwatch.Frequency);
        while ((Received(0) < SteadyCount || Received(99) < 1) && Stopwatch.GetTimestamp() < end)
        {
            Thread.Yield();
        }

        string state = queue.Ring.DescribeState();
        stop.Cancel();
        Assert.IsTrue(consumer.Wait(TimeSpan.FromSeconds(30)));
        Assert.AreEqual(SteadyCount, Received(0), $"steady producer's messages received; queue: {state}");
        lock (received)
        {
            CollectionAssert.AreEqual(Enumerable.Range(0, SteadyCount).ToList(), received[0], "the steady producer's messages, once each, in order");
            Assert.AreEqual(1, received[99].Count);
            for (int k = 1; k <= Kills; k++)
            {
                // A killed producer's messages form an unbroken prefix: only the one in flight at the kill can be lost.
                CollectionAssert.AreEqual(Enumerable.Range(0, received[k].Count).ToList(), received[k], $"victim {k}");
            }
        }
    }

    [TestMethod]
    public void Consumers_killed_mid_stream_lose_at_most_one_message_each()
    {
        string name = TestNames.Unique("qkillc");
        const int MaxPayload = 50, Total = 20_000, Kills = 3;
        string dir = Directory.CreateTempSubdirectory("shmipc-qkillc-").FullName;
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 13 });
        using var children = new ChildProcesses();
        try
        {
            int files = 0;
            string NextFile() => Path.Combine(dir, $"c{files++}.bin");
            ChildProcess survivor = children.StartReady("queue-consume", name, S(MaxPayload), NextFile());

            byte[] buffer = new byte[QueueMessages.HeaderLength + MaxPayload];
            int sent = 0;
            for (int k = 0; k < Kills; k++)
            {
                ChildProcess victim = children.StartReady("queue-consume", name, S(MaxPayload), NextFile());
                int until = (k + 1) * Total / (Kills + 1);
                for (; sent < until; sent++)
                {
                    queue.Enqueue(buffer.AsSpan(0, QueueMessages.Write(buffer, 0, sent, MaxPayload)));
                }

                victim.Kill9();
            }

            for (; sent < Total; sent++)
            {
                queue.Enqueue(buffer.AsSpan(0, QueueMessages.Write(buffer, 0, sent, MaxPayload)));
            }

            queue.Enqueue(QueueMessages.Stop());
            Assert.AreEqual(0, survivor.WaitForExit(TimeSpan.FromSeconds(60)), survivor.StandardError);

            var count = new int[Total];
            for (int f = 0; f < files; f++)
            {
                foreach ((_, int s) in ReadRecords(Path.Combine(dir, $"c{f}.bin")))
                {
                    count[s]++;
                }
            }

            Assert.IsTrue(count.All(c => c <= 1), "no message twice");
            int lost = count.Count(c => c == 0);
            TestContext.WriteLine($"lost {lost} message(s) to {Kills} consumer kills");
            Assert.IsTrue(lost <= Kills, $"{lost} messages lost to {Kills} kills");
        }
        finally
        {
            children.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void A_blocked_consumer_in_another_process_wakes_for_a_message()
    {
        string name = TestNames.Unique("qwake");
        string dir = Directory.CreateTempSubdirectory("shmipc-qwake-").FullName;
        using ShmQueue queue = ShmQueue.Create(name);
        try
        {
            using ChildProcess consumer = ChildProcess.StartReady("queue-consume", name, "10", Path.Combine(dir, "c.bin"));
            byte[] buffer = new byte[QueueMessages.HeaderLength + 10];
            queue.Enqueue(buffer.AsSpan(0, QueueMessages.Write(buffer, 5, 0, 10)));
            queue.Enqueue(QueueMessages.Stop());
            Assert.AreEqual(0, consumer.WaitForExit(ChildStart), consumer.StandardError);
            CollectionAssert.AreEqual(new[] { (5, 0) }, ReadRecords(Path.Combine(dir, "c.bin")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
