using System.Diagnostics;
using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// The tests every non-.NET peer passes against the .NET library (C: <see cref="InteropCTests"/>, Python:
/// <see cref="InteropPythonTests"/>): the same bytes, commit protocol, crash rules and semaphores, in both
/// directions, for the Queue and the Pipe, with segments created on either side and peers killed by SIGKILL.
/// Each peer tool speaks the same command line (native-notes/c/shmipc_tool.c, native-notes/python/shmipc_tool.py).
/// </summary>
public abstract partial class ChildProcessTests
{
    protected static readonly TimeSpan PeerStart = TimeSpan.FromSeconds(20);

    public TestContext TestContext { get; set; } = null!;

    /// <summary>Messages per direction in the streaming tests (the Python peer is slower).</summary>
    protected abstract int Count { get; }

    /// <summary>
    /// Longest random pause (µs) before each message of the settling test: a few of the peer's 50 µs sleep
    /// cycles (register, re-check, sleep, time out, settle), so the sends land at every point of that cycle.
    /// </summary>
    protected abstract int SettleGapMicros { get; }

    /// <summary>Starts the peer tool; Inconclusive when its toolchain is absent.</summary>
    private protected abstract ChildProcess Peer(params string[] args);

    private static void AssertClean(string name) =>
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length, $"left in /dev/shm: {string.Join(", ", TestNames.ShmFilesOf(name))}");

    [TestMethod]
    public void A_peer_producer_feeds_a_dotnet_consumer_every_message_intact_and_in_order()
    {
        const int MaxPayload = 200;
        string name = TestNames.Unique("ic-c2n");
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 14 }))
        using (ChildProcess producer = Peer("queue-produce", name, "3", S(Count), S(MaxPayload)))
        {
            producer.WaitForLine("READY", PeerStart);
            for (int i = 0; i < Count; i++)
            {
                (int p, int s) = QueueMessages.Verify(queue.Dequeue(TimeSpan.FromSeconds(10)), MaxPayload);
                Assert.AreEqual((3, i), (p, s), "producer and sequence");
            }

            producer.WaitForLine("DONE", PeerStart);
            Assert.AreEqual(0, producer.WaitForExit(PeerStart), producer.StandardError);
            Assert.IsFalse(queue.TryDequeue(out _), "nothing beyond the count");
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_dotnet_producer_writing_through_shortened_loans_feeds_a_peer_consumer() =>
        // A loan committed shorter than it claimed leaves its record split in two (LAYOUT.md §6.3, "A message committed
        // shorter than claimed"): the peer must take the message and skip the abandoned rest, wrapping many times.
        FeedPeerConsumer("ic-loan", 1 << 13, static (queue, i) =>
        {
            using ShmLoan loan = queue.Loan(QueueMessages.HeaderLength + PeerConsumerMaxPayload + (i % 5 * 40), TimeSpan.FromSeconds(10));
            loan.Commit(QueueMessages.Write(loan.Span, 5, i, PeerConsumerMaxPayload));
        });

    [TestMethod]
    public void A_dotnet_producer_feeds_a_peer_consumer_which_checks_content_and_order()
    {
        byte[] buffer = new byte[QueueMessages.HeaderLength + PeerConsumerMaxPayload];
        FeedPeerConsumer("ic-n2c", 1 << 14, (queue, i) =>
        {
            int length = QueueMessages.Write(buffer, 5, i, PeerConsumerMaxPayload);
            queue.Enqueue(buffer.AsSpan(0, length), TimeSpan.FromSeconds(10));
        });
    }

    private const int PeerConsumerMaxPayload = 200;

    /// <summary>
    /// A peer "queue-consume" checks content and order of <see cref="Count"/> messages from producer 5 (payloads up to
    /// <see cref="PeerConsumerMaxPayload"/>), which <paramref name="put"/> enqueues one by one.
    /// </summary>
    private void FeedPeerConsumer(string what, int capacity, Action<ShmQueue, int> put)
    {
        string name = TestNames.Unique(what);
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = capacity }))
        using (ChildProcess consumer = Peer("queue-consume", name, S(Count), S(PeerConsumerMaxPayload)))
        {
            consumer.WaitForLine("READY", PeerStart);
            for (int i = 0; i < Count; i++)
            {
                put(queue, i);
            }

            long sum = (long)Count * (Count - 1) / 2;
            Assert.AreEqual($"OK {Count} {sum}", consumer.WaitForLine("OK", TimeSpan.FromSeconds(30)));
            Assert.AreEqual(0, consumer.WaitForExit(PeerStart), consumer.StandardError);
        }

        AssertClean(name);
    }

    [TestMethod]
    public void Peer_and_dotnet_producers_and_consumers_share_one_queue()
    {
        // Two peer producers and this process produce; a peer consumer and this process consume, each until a
        // stop marker. Every message is counted once across both consumers.
        int perProducer = Count / 4;
        const int MaxPayload = 100;
        string name = TestNames.Unique("ic-mix");
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 13 }))
        using (ChildProcess consumer = Peer("queue-consume", name, S(int.MaxValue), S(MaxPayload)))
        using (ChildProcess p0 = Peer("queue-produce", name, "0", S(perProducer), S(MaxPayload)))
        using (ChildProcess p1 = Peer("queue-produce", name, "1", S(perProducer), S(MaxPayload)))
        {
            consumer.WaitForLine("READY", PeerStart);
            var last = new Dictionary<int, int>();
            int mine = 0;
            void Consume(byte[] message)
            {
                (int p, int s) = QueueMessages.Verify(message, MaxPayload);
                Assert.IsTrue(!last.TryGetValue(p, out int previous) || s > previous, $"producer {p} out of order");
                last[p] = s;
                mine++;
            }

            byte[] buffer = new byte[QueueMessages.HeaderLength + MaxPayload];
            for (int i = 0; i < perProducer; i++)
            {
                queue.Enqueue(buffer.AsSpan(0, QueueMessages.Write(buffer, 2, i, MaxPayload)), TimeSpan.FromSeconds(10));
                if (queue.TryDequeue(out byte[]? message))
                {
                    Consume(message);
                }
            }

            p0.WaitForLine("DONE", TimeSpan.FromSeconds(30));
            p1.WaitForLine("DONE", TimeSpan.FromSeconds(30));
            queue.Enqueue(QueueMessages.Stop()); // one stop marker per consumer, behind every data message
            queue.Enqueue(QueueMessages.Stop());
            while (true)
            {
                byte[] message = queue.Dequeue(TimeSpan.FromSeconds(10));
                if (message.Length == 4 && BitConverter.ToInt32(message) == -1)
                {
                    break;
                }

                Consume(message);
            }

            string[] ok = consumer.WaitForLine("OK", TimeSpan.FromSeconds(30)).Split(' ');
            int theirs = int.Parse(ok[1], System.Globalization.CultureInfo.InvariantCulture);
            TestContext.WriteLine($"peer consumer took {theirs}, .NET took {mine}");
            Assert.AreEqual(3 * perProducer, theirs + mine, "every message exactly once");
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_consumer_that_always_sleeps_settles_every_registration_so_posts_never_pile_up()
    {
        // LAYOUT.md §4: every sleeper registration is settled exactly once. The peer never spins, so after each
        // message it registers and sleeps, in 50 µs slices: it is woken by a post, or times out and settles, over
        // and over. Each message is sent alone, after the previous one was taken and a random pause, so the sends
        // land at every point of that cycle: while it sleeps (woken by the post), between its registration and
        // its re-check, and just after a slice timed out. A waiter that takes its registration back after a
        // notifier has already exchanged it leaves that notifier's post behind: the next sleep returns at once
        // without settling, and the count grows with every such race (the .NET side had exactly that bug).
        const int Messages = 5_000;
        string name = TestNames.Unique("ic-settle");
        int maxCount = 0;
        int sentToSleeper = 0;
        var random = new Random(6_4_2026);
        var clock = Stopwatch.StartNew();
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 14 }))
        using (ChildProcess consumer = Peer("queue-consume-sleepy", name, S(Messages), "50"))
        {
            consumer.WaitForLine("READY", PeerStart);
            for (int i = 0; i < Messages; i++)
            {
                long pauseEnd = Stopwatch.GetTimestamp() + (random.Next(SettleGapMicros + 1) * Stopwatch.Frequency / 1_000_000);
                while (Stopwatch.GetTimestamp() < pauseEnd)
                {
                    Thread.SpinWait(10);
                }

                sentToSleeper += queue.SleepingConsumers > 0 ? 1 : 0;
                queue.Enqueue(BitConverter.GetBytes(i));
                long deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
                while (queue.Ring.Positions.Read != queue.Ring.Positions.Tail)
                {
                    Assert.IsTrue(Stopwatch.GetTimestamp() < deadline, $"message {i} was not taken within 10 s. peer stderr:\n{consumer.StandardError}");
                    Thread.Yield();
                }

                maxCount = Math.Max(maxCount, queue.DataSemaphoreCount);
            }

            Assert.AreEqual($"OK {Messages}", consumer.WaitForLine("OK", PeerStart));
            Assert.AreEqual(0, consumer.WaitForExit(PeerStart), consumer.StandardError);
            maxCount = Math.Max(maxCount, queue.DataSemaphoreCount);
            TestContext.WriteLine($"{Messages} messages in {clock.Elapsed.TotalMilliseconds:0} ms; {sentToSleeper} sent while the peer was registered; " +
                $"data semaphore count at most {maxCount}, {queue.DataSemaphoreCount} at the end");

            // At most one post per registered waiter, and the peer is the only waiter.
            Assert.IsTrue(maxCount <= 2, $"the data semaphore's count reached {maxCount}: the peer leaves posts behind");
            Assert.IsTrue(sentToSleeper >= Messages / 4, $"only {sentToSleeper} of {Messages} messages found the peer registered to sleep");
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_consumer_helps_the_tail_past_a_padding_record_whose_producer_died_before_advancing_it()
    {
        // LAYOUT.md §6.4: a padding record is skipped only after CAS(Tail, r, r + size), so ReadPosition never
        // passes Tail. 64-byte messages take 96 bytes: after 42 of them Tail sits 64 bytes before the wrap, where
        // a producer "killed" between its claim CAS and its Tail CAS leaves a claimed padding record at Tail.
        string name = TestNames.Unique("ic-pad");
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096, MaxMessageLength = 64 }))
        {
            for (int i = 0; i < 42; i++)
            {
                queue.Enqueue(new byte[64]);
                Assert.IsTrue(queue.TryDequeue(out _));
            }

            Assert.IsTrue(queue.Ring.ClaimPaddingAsIfKilled(pid: 999_999));
            (_, long read0, long tail0) = queue.Ring.Positions;
            Assert.AreEqual(read0, tail0);
            using (ChildProcess consumer = Peer("queue-try-get", name))
            {
                Assert.AreEqual("EMPTY", consumer.WaitForLine("EMPTY", PeerStart));
                Assert.AreEqual(0, consumer.WaitForExit(PeerStart), consumer.StandardError);
            }

            (long head, long read, long tail) = queue.Ring.Positions;
            Assert.AreEqual(tail0 + 64, tail, "the peer consumer advanced Tail past the padding");
            Assert.AreEqual(tail, read, "and then ReadPosition, never past Tail");
            Assert.IsTrue(head <= read);
            queue.Enqueue([7]);
            using (ChildProcess consumer = Peer("queue-try-get", name))
            {
                Assert.AreEqual("GOT 1", consumer.WaitForLine("GOT", PeerStart));
            }
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_queue_created_by_the_peer_opens_in_dotnet_and_is_unlinked_by_its_creator()
    {
        string name = TestNames.Unique("ic-ccreate");
        using (ChildProcess creator = Peer("queue-create", name, S(8192)))
        {
            creator.WaitForLine("READY", PeerStart);
            using (ShmQueue queue = ShmQueue.Open(name))
            {
                Assert.AreEqual(8192, queue.Capacity);
                Assert.AreEqual(8192 / 2 - 32, queue.MaxMessageLength);
                for (int i = 0; i < 1000; i++) // several laps over the C creator's stamps
                {
                    queue.Enqueue(PipeMessages.Make(i, i % 300));
                    CollectionAssert.AreEqual(PipeMessages.Make(i, i % 300), queue.Dequeue(TimeSpan.FromSeconds(5)));
                }
            }

            creator.CloseInput();
            creator.WaitForLine("CLOSED", PeerStart);
            Assert.AreEqual(0, creator.WaitForExit(PeerStart), creator.StandardError);
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_producer_killed_between_claim_and_commit_costs_one_message_not_the_queue()
    {
        string name = TestNames.Unique("ic-kill");
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 8192 }))
        {
            queue.Enqueue([1]);
            using (ChildProcess claimer = Peer("queue-claim-hold", name, "50"))
            {
                claimer.WaitForLine("CLAIMED", PeerStart);
                queue.Enqueue([2]);
                CollectionAssert.AreEqual(new byte[] { 1 }, queue.Dequeue(TimeSpan.FromSeconds(5)));
                Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(300)), "a live peer producer's record must be waited for");
                claimer.Kill9();
            }

            var clock = Stopwatch.StartNew();
            CollectionAssert.AreEqual(new byte[] { 2 }, queue.Dequeue(TimeSpan.FromSeconds(10)));
            TestContext.WriteLine($"skipped the dead peer producer's record in {clock.Elapsed.TotalMilliseconds:0.0} ms");
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"recovery took {clock.Elapsed}");
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_consumer_repairs_a_record_abandoned_by_a_killed_dotnet_producer()
    {
        string name = TestNames.Unique("ic-kill2");
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 8192 }))
        {
            using (ChildProcess claimer = ChildProcess.Start("queue-claim-hold", name, "50"))
            {
                Assert.AreEqual("CLAIMED", claimer.ReadLine(PeerStart));
                claimer.Kill9();
            }

            byte[] buffer = new byte[64];
            using ChildProcess consumer = Peer("queue-consume", name, "100", "40");
            consumer.WaitForLine("READY", PeerStart);
            for (int i = 0; i < 100; i++)
            {
                queue.Enqueue(buffer.AsSpan(0, QueueMessages.Write(buffer, 0, i, 40)));
            }

            Assert.AreEqual($"OK 100 {99 * 100 / 2}", consumer.WaitForLine("OK", TimeSpan.FromSeconds(10)));
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_consumer_asleep_on_a_queue_drains_what_is_left_and_stops_at_a_dotnet_shutdown()
    {
        string name = TestNames.Unique("ic-shut");
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 14 }))
        using (ChildProcess consumer = Peer("queue-drain-until-shutdown", name))
        {
            consumer.WaitForLine("READY", PeerStart);
            queue.Enqueue([1]);
            queue.Enqueue([2]);
            if (!SpinWait.SpinUntil(() => queue.Count == 0 && queue.SleepingConsumers > 0, PeerStart))
            {
                Assert.Fail($"the peer did not drain and sleep; count {queue.Count}. stderr:\n{consumer.StandardError}");
            }

            queue.Enqueue([3]);
            queue.Shutdown();

            Assert.AreEqual("SHUTDOWN 3 REFUSED", consumer.WaitForLine("SHUTDOWN", TimeSpan.FromSeconds(5)),
                "the peer delivers what is left, then stops instead of waiting, and refuses to enqueue");
            Assert.AreEqual(0, consumer.WaitForExit(PeerStart), consumer.StandardError);
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_shutdown_is_seen_by_dotnet_producers_and_consumers()
    {
        string name = TestNames.Unique("ic-shut2");
        using (ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 14 }))
        {
            queue.Enqueue([1]);
            queue.Enqueue([2]);
            using (ChildProcess peer = Peer("queue-shutdown", name, "0"))
            {
                peer.WaitForLine("SHUTDOWN", PeerStart);
                Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
            }

            Assert.IsTrue(queue.IsShutDown);
            Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Enqueue([3]));
            CollectionAssert.AreEqual(new byte[] { 1 }, queue.Dequeue());
            using (ChildProcess peer = Peer("queue-shutdown", name, "1"))
            {
                peer.WaitForLine("SHUTDOWN", PeerStart);
                Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
            }

            Assert.AreEqual(0, queue.Count, "an immediate shutdown discards what is left");
            Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Dequeue());
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_dotnet_pipe_and_a_peer_echo_exchange_messages_of_every_length()
    {
        string name = TestNames.Unique("ic-pipe");
        using (ShmConnection end = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096 }))
        using (ChildProcess echo = Peer("pipe-echo", name))
        {
            echo.WaitForLine("READY", PeerStart);
            for (int i = 0; i < Count; i++)
            {
                byte[] message = PipeMessages.Make(i, PipeMessages.LengthOf(i, end.MaxMessageLength));
                end.Send(message);
                Assert.IsTrue(end.TryReceive(out byte[] back, TimeSpan.FromSeconds(5)), $"echo of {i}");
                CollectionAssert.AreEqual(message, back, $"message {i}");
            }

            end.Dispose();
            Assert.AreEqual($"PEER-CLOSED {Count}", echo.WaitForLine("PEER-CLOSED", PeerStart));
            Assert.AreEqual(0, echo.WaitForExit(PeerStart), echo.StandardError);
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_pipe_created_by_the_peer_is_connected_from_dotnet()
    {
        string name = TestNames.Unique("ic-cpipe");
        using (ChildProcess echo = Peer("pipe-create-echo", name))
        {
            echo.WaitForLine("READY", PeerStart);
            using (ShmConnection end = ShmPipe.Connect(name))
            {
                Assert.IsTrue(end.IsPeerConnected);
                for (int i = 0; i < 500; i++)
                {
                    byte[] message = PipeMessages.Make(i, PipeMessages.LengthOf(i, end.MaxMessageLength));
                    end.Send(message);
                    CollectionAssert.AreEqual(message, end.Receive(), $"message {i}");
                }
            }

            Assert.AreEqual("PEER-CLOSED 500", echo.WaitForLine("PEER-CLOSED", PeerStart));
            Assert.AreEqual(0, echo.WaitForExit(PeerStart), echo.StandardError);
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_pipe_peer_killed_mid_write_is_seen_as_gone_after_its_committed_messages()
    {
        string name = TestNames.Unique("ic-pkill");
        using (ShmConnection end = ShmPipe.Create(name, new ShmPipeOptions { WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(20) } }))
        {
            using (ChildProcess sender = Peer("pipe-send-hold", name, "5"))
            {
                sender.WaitForLine("READY", PeerStart);
                sender.Kill9();
            }

            for (int i = 0; i < 5; i++)
            {
                Assert.AreEqual(i, BitConverter.ToInt32(end.Receive()));
            }

            var clock = Stopwatch.StartNew();
            Assert.ThrowsExactly<ShmPeerClosedException>(() => end.Receive());
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"noticing the dead peer took {clock.Elapsed}");
        }

        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_is_one_of_several_senders_on_a_shared_end_and_every_message_arrives_whole()
    {
        // LAYOUT.md §5.7: the peer attaches with a share token and sends under the end's SendLock while a .NET
        // process (the test's own copy of the end, on a thread) sends on the same end.
        string name = TestNames.Unique("ic-share");
        int perSender = Math.Min(Count, 2000);
        using (ShmConnection a = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096 }))
        {
            ShmConnection b = ShmPipe.Connect(name, new ShmPipeOptions { Capacity = 4096 });
            using (ChildProcess peer = Peer("pipe-shared-send", b.Share(), "peer", S(perSender), "100"))
            {
                var dotnetSender = new Thread(() =>
                {
                    using (b)
                    {
                        for (int i = 0; i < perSender; i++)
                        {
                            b.Send(PipeMessages.Tagged("net", i, 8 + (i % 200)));
                        }
                    }
                });
                dotnetSender.Start();
                var next = new Dictionary<string, int>();
                for (int n = 0; n < 2 * perSender; n++)
                {
                    Assert.IsTrue(a.TryReceive(out byte[] message, TimeSpan.FromSeconds(20)), $"message {n} arrived");
                    var parsed = PipeMessages.ParseTagged(message, message.Length);
                    Assert.IsNotNull(parsed, $"message {n} is whole");
                    int expected = next.GetValueOrDefault(parsed.Value.Tag);
                    Assert.AreEqual(expected, parsed.Value.Index, $"{parsed.Value.Tag}'s messages in order");
                    next[parsed.Value.Tag] = expected + 1;
                }

                Assert.IsTrue(dotnetSender.Join(TimeSpan.FromSeconds(20)));
                peer.WaitForLine("SENT", PeerStart);
                Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
                Assert.AreEqual(perSender, next["peer"]);
                Assert.ThrowsExactly<ShmPeerClosedException>(() => a.TryReceive(out _, TimeSpan.FromSeconds(20)), "the last holder (the peer or .NET) closed the end");
            }
        }

        AssertClean(name);
    }
}
