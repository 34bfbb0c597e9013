using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Acknowledged delivery across real processes: consumers SIGKILLed at any instant lose nothing.</summary>
[TestClass]
public sealed class AcknowledgedProcessTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static string S(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static TempSegment<ShmQueue> NewQueue(long capacity = 1 << 14, int? maxDeliveries = null) =>
        TempSegment.Create("qackp", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = capacity, Acknowledged = true, MaxDeliveries = maxDeliveries }));

    private static byte[] Message(int first)
    {
        byte[] message = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(message, first);
        return message;
    }

    [TestMethod]
    public void A_paused_live_taker_is_never_overtaken_and_its_message_comes_back_with_count_2_when_it_is_killed()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        queue.Enqueue(Message(42));
        using var children = new ChildProcesses();
        ChildProcess holder = children.StartReady("ack-take-hold", fixture.Name);
        Assert.AreEqual("TAKEN 1 42", holder.WaitForLine("TAKEN", Long));

        // Alive and paused: waiting consumers check it (before every sleep slice) and leave it alone.
        Assert.IsFalse(queue.TryTake(out ShmDelivery early, TimeSpan.FromMilliseconds(500)), $"overtaken: got a delivery #{early.DeliveryCount}");
        Assert.AreEqual(1, queue.InFlight);

        holder.Kill9();
        ShmDelivery again = queue.Take(Long);
        Assert.AreEqual(42, BinaryPrimitives.ReadInt32LittleEndian(again.Span));
        Assert.AreEqual(2, again.DeliveryCount);
        again.Ack();
        Assert.AreEqual(0, queue.UnfinishedTasks);
    }

    [TestMethod]
    public void Join_returns_when_another_process_acks_the_last_message()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        queue.Enqueue(Message(1));
        using var children = new ChildProcesses();
        ChildProcess worker = children.StartReady("ack-take-hold", fixture.Name);
        worker.WaitForLine("TAKEN", Long);

        Assert.IsFalse(queue.Join(TimeSpan.FromMilliseconds(300)), "the message is taken, not acked");
        Task<bool> join = Task.Run(() => queue.Join(Long));
        Assert.IsFalse(join.Wait(TimeSpan.FromMilliseconds(100)));
        worker.WriteLine("ack");
        Assert.IsTrue(join.Result, "Join must return once the other process acked");
        worker.WaitForLine("ACKED", Long);
        Assert.AreEqual(0, worker.WaitForExit(Long), worker.StandardError);
    }

    [TestMethod]
    public void A_poison_message_reaches_the_dead_letter_queue_after_MaxDeliveries_and_the_rest_still_flows()
    {
        using TempSegment<ShmQueue> fixture = NewQueue(maxDeliveries: 3);
        ShmQueue queue = fixture.Object;
        string deadName = fixture.Name + ".dead";
        try
        {
            queue.Enqueue(Message(-1));
            for (int i = 0; i < 20; i++)
            {
                queue.Enqueue(Message(i));
            }

            using var children = new ChildProcesses();
            int poisonDeaths = 0, acked = 0;
            for (int round = 0; round < 8 && queue.UnfinishedTasks > 0; round++)
            {
                ChildProcess worker = children.StartReady("ack-poison-worker", fixture.Name);
                string line = worker.WaitForLine("", Long);
                while (!line.StartsWith("POISON", StringComparison.Ordinal) && !line.StartsWith("DONE", StringComparison.Ordinal))
                {
                    line = worker.WaitForLine("", Long);
                }

                if (line.StartsWith("POISON", StringComparison.Ordinal))
                {
                    poisonDeaths++;
                    Assert.AreEqual($"POISON {poisonDeaths}", line);
                    worker.WaitForExit(Long);
                }
                else
                {
                    acked += int.Parse(line.AsSpan(5), CultureInfo.InvariantCulture);
                    Assert.AreEqual(0, worker.WaitForExit(Long), worker.StandardError);
                }
            }

            Assert.AreEqual(3, poisonDeaths, "delivered MaxDeliveries times, then dead-lettered");
            Assert.AreEqual(0, queue.UnfinishedTasks);
            using ShmQueue dead = ShmQueue.Open(deadName);
            Assert.IsTrue(dead.TryTake(out ShmDelivery poison), "the dead-letter queue is acknowledged");
            Assert.AreEqual(-1, BinaryPrimitives.ReadInt32LittleEndian(poison.Span));
            Assert.AreEqual(3, poison.DeliveryCount, "a dead letter carries the deliveries it had");
            poison.Ack();
            Assert.IsFalse(dead.TryDequeue(out _));
        }
        finally
        {
            fixture.Release();
            foreach (string file in TestNames.ShmFilesOf(deadName))
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>
    /// 3 producer and 3 consumer processes; consumers SIGKILLed at random instants (inside Take, between work and Ack,
    /// inside Ack...) 100 times (SHMIPC_ACK_KILLS for more): every message is processed at least once and acked (the
    /// queue ends with nothing unfinished), duplicates are at most the kills, per-producer order holds among first deliveries.
    /// </summary>
    [TestMethod]
    [TestCategory("Stress")]
    public void Consumers_killed_at_random_instants_lose_nothing_and_duplicate_at_most_once_per_kill()
    {
        int kills = int.TryParse(Environment.GetEnvironmentVariable("SHMIPC_ACK_KILLS"), CultureInfo.InvariantCulture, out int k) ? k : 100;
        const int Producers = 3, Consumers = 3;
        int perProducer = Math.Max(3000, kills * 30);
        string dir = Directory.CreateTempSubdirectory("shmipc-ack-").FullName;
        using TempSegment<ShmQueue> fixture = NewQueue(capacity: 1 << 15);
        ShmQueue queue = fixture.Object;
        using var children = new ChildProcesses();
        var random = new Random(1234);
        try
        {
            var producers = new List<ChildProcess>();
            for (int p = 0; p < Producers; p++)
            {
                producers.Add(children.Start("ack-produce", fixture.Name, S(p), S(perProducer)));
            }

            var slots = new ChildProcess?[Consumers];
            int started = 0, killed = 0;
            ChildProcess StartConsumer() =>
                children.Start("ack-consume", fixture.Name, Path.Combine(dir, $"c{started++}.bin"), "2");

            var killAt = new long[Consumers];
            for (int c = 0; c < Consumers; c++)
            {
                slots[c] = StartConsumer();
                killAt[c] = Stopwatch.GetTimestamp() + Stopwatch.Frequency * random.Next(300, 900) / 1000;
            }

            var clock = Stopwatch.StartNew();
            while (killed < kills)
            {
                Assert.IsTrue(clock.Elapsed < TimeSpan.FromMinutes(5), $"only {killed} kills in {clock.Elapsed}");
                for (int c = 0; c < Consumers; c++)
                {
                    if (killed < kills && Stopwatch.GetTimestamp() >= killAt[c])
                    {
                        slots[c]!.Kill9();
                        killed++;
                        slots[c] = StartConsumer();
                        // Dotnet starts in ~150-500 ms: a life of 200-800 ms dies during start-up or in the middle of work.
                        killAt[c] = Stopwatch.GetTimestamp() + Stopwatch.Frequency * random.Next(200, 800) / 1000;
                    }
                }

                Thread.Sleep(5); // the kill schedule's tick, not a wait for state
            }

            foreach (ChildProcess producer in producers)
            {
                producer.WaitForLine("DONE", TimeSpan.FromMinutes(3));
            }

            Assert.IsTrue(queue.Join(TimeSpan.FromMinutes(3)), $"unfinished {queue.UnfinishedTasks}, in flight {queue.InFlight}");
            queue.Shutdown();
            foreach (ChildProcess? consumer in slots)
            {
                consumer!.WaitForLine("DONE", Long);
            }

            // What the consumers processed, from their files (a record cut by a kill is dropped: its Ack never ran).
            var seen = new Dictionary<(int, int), int>();
            int duplicates = 0, redelivered = 0;
            for (int c = 0; c < started; c++)
            {
                string file = Path.Combine(dir, $"c{c}.bin");
                if (!File.Exists(file))
                {
                    continue; // killed while starting, before it opened its file
                }

                byte[] bytes = File.ReadAllBytes(file);
                var last = new Dictionary<int, int>();
                for (int i = 0; i + 12 <= bytes.Length; i += 12)
                {
                    int producer = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i));
                    int sequence = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i + 4));
                    int count = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i + 8));
                    if (count > 1)
                    {
                        redelivered++;
                    }
                    else
                    {
                        Assert.IsTrue(!last.TryGetValue(producer, out int previous) || sequence > previous,
                            $"consumer {c}: producer {producer}'s first deliveries out of order ({sequence} after {previous})");
                        last[producer] = sequence;
                    }

                    if (seen.TryGetValue((producer, sequence), out int times))
                    {
                        duplicates++;
                    }

                    seen[(producer, sequence)] = times + 1;
                }
            }

            Assert.AreEqual(Producers * perProducer, seen.Count, "a message was lost");
            Assert.IsTrue(duplicates <= killed, $"{duplicates} duplicates for {killed} kills");
            Assert.AreEqual(0, queue.InFlight);
            Assert.AreEqual(0, queue.Count);
            TestContextLog($"{killed} kills, {started} consumers, {redelivered} redelivered, {duplicates} duplicates, {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public TestContext TestContext { get; set; } = null!;

    private void TestContextLog(string line) => TestContext.WriteLine(line);
}
