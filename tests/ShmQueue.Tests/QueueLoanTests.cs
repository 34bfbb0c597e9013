using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Loaned writes on a queue (<see cref="ShmQueue.Loan(int, CancellationToken)"/>, <see cref="ShmLoan"/>).</summary>
[TestClass]
public sealed class QueueLoanTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static TempSegment<ShmQueue> NewQueue(long capacity = 8192) =>
        TempSegment.Create("qloan", name => ShmQueue.Create(name, new ShmQueueOptions
        {
            Capacity = capacity,
            WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(50) },
        }));

    private static void Fill(Span<byte> span, int seed)
    {
        for (int i = 0; i < span.Length; i++)
        {
            span[i] = (byte)((seed * 31) + i);
        }
    }

    private static byte[] Expected(int length, int seed)
    {
        byte[] bytes = new byte[length];
        Fill(bytes, seed);
        return bytes;
    }

    [TestMethod]
    public void A_committed_loan_is_delivered_in_its_place_in_the_queue()
    {
        using TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        using (ShmLoan loan = queue.Loan(300))
        {
            Assert.AreEqual(300, loan.Span.Length);
            Fill(loan.Span, 1);

            // Enqueued after the loan was taken: delivered after it, although committed before it.
            queue.Enqueue([9]);
            Assert.AreEqual(2, queue.Count, "the open loan counts as a message being written");
            loan.Commit(300);
            Assert.IsFalse(loan.IsOpen);
        }

        CollectionAssert.AreEqual(Expected(300, 1), queue.Dequeue(Long));
        CollectionAssert.AreEqual(new byte[] { 9 }, queue.Dequeue(Long));
        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    [DataRow(1000, 10, DisplayName = "much shorter: the rest becomes an abandoned record")]
    [DataRow(1000, 995, DisplayName = "shorter within the same 32-byte record size")]
    [DataRow(1000, 968, DisplayName = "exactly one 32-byte unit shorter")]
    public void A_shortened_commit_delivers_only_the_committed_bytes_and_the_rest_of_the_record_is_skipped(int maxLength, int length)
    {
        using TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        using (ShmLoan loan = queue.Loan(maxLength))
        {
            Fill(loan.Span, 2);
            loan.Commit(length);
        }

        queue.Enqueue([7, 7]);
        Assert.AreEqual(2, queue.Count, "the remainder of a shortened record is no message");
        CollectionAssert.AreEqual(Expected(length, 2), queue.Dequeue(Long));
        CollectionAssert.AreEqual(new byte[] { 7, 7 }, queue.Dequeue(Long));
        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    public void Shortened_loans_around_a_small_ring_many_times_keep_every_message_whole()
    {
        // 8 KiB ring, loans of up to 1 KiB committed at every length from 0 up: the split records wrap, are reclaimed
        // and reused many times over.
        using TempSegment<ShmQueue> temp = NewQueue(8192);
        ShmQueue queue = temp.Object;
        for (int i = 0; i < 2000; i++)
        {
            int maxLength = 1 + (i * 37 % 1024);
            int length = i * 13 % (maxLength + 1);
            using (ShmLoan loan = queue.Loan(maxLength, Long))
            {
                Fill(loan.Span[..length], i);
                loan.Commit(length);
            }

            if (i % 3 == 2)
            {
                queue.Enqueue(Expected(5, i));
                Assert.AreEqual(length, queue.Dequeue(Long).Length);
                CollectionAssert.AreEqual(Expected(5, i), queue.Dequeue(Long), $"message after loan {i}");
            }
            else
            {
                CollectionAssert.AreEqual(Expected(length, i), queue.Dequeue(Long), $"loan {i} ({length} of {maxLength} bytes)");
            }
        }

        Assert.AreEqual(0, queue.Count);
    }

    [TestMethod]
    public void An_abandoned_loan_delivers_nothing_and_wakes_a_consumer_waiting_behind_it()
    {
        using TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        ShmLoan loan = queue.Loan(100);
        Fill(loan.Span, 3);
        queue.Enqueue([5]);
        Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(100)), "a live loan is waited for, never overtaken");
        Task<byte[]> consumer = Task.Run(() => queue.Dequeue(Long));
        loan.Dispose();
        loan.Dispose(); // idempotent
        Assert.IsTrue(consumer.Wait(Long), "the consumer waiting behind the abandoned loan goes on");
        CollectionAssert.AreEqual(new byte[] { 5 }, consumer.Result);
        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    public void A_zero_length_commit_sends_an_empty_message()
    {
        using TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        using (ShmLoan loan = queue.Loan(64))
        {
            loan.Commit(0);
        }

        using (ShmLoan loan = queue.Loan(0))
        {
            Assert.AreEqual(0, loan.Span.Length);
            loan.Commit(0);
        }

        Assert.AreEqual(0, queue.Dequeue(Long).Length);
        Assert.AreEqual(0, queue.Dequeue(Long).Length);
        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    public void Misuse_of_a_loan_throws_clear_exceptions()
    {
        using TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        LoanMisuse.Check(() => queue.Loan(16), queue.MaxMessageLength, n => queue.Loan(n), temp.Name);
        Assert.AreEqual(1, queue.Count, "only the one valid commit of the checks was delivered");
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, queue.Dequeue(Long));
    }

    [TestMethod]
    public void A_loan_on_a_full_queue_waits_times_out_or_is_cancelled_then_gets_the_freed_space()
    {
        using TempSegment<ShmQueue> temp = NewQueue(4096);
        ShmQueue queue = temp.Object;
        int maxLength = queue.MaxMessageLength;
        while (queue.TryEnqueue(new byte[maxLength]))
        {
        }

        var clock = Stopwatch.StartNew();
        Assert.IsFalse(queue.TryLoan(maxLength, out ShmLoan none, TimeSpan.FromMilliseconds(100)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(90), $"waited {clock.Elapsed}");
        Assert.IsFalse(none.IsOpen);
        Assert.IsFalse(queue.TryLoan(maxLength, out _, TimeSpan.Zero));
        Assert.ThrowsExactly<TimeoutException>(() => queue.Loan(maxLength, TimeSpan.FromMilliseconds(50)));
        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            Assert.ThrowsExactly<OperationCanceledException>(() => queue.Loan(maxLength, cancel.Token));
        }

        // A consumer frees space while the loan waits: it gets it.
        Task<byte[]> consumer = Task.Run(() =>
        {
            SpinWait.SpinUntil(() => queue.SleepingProducers > 0, Long);
            return queue.Dequeue(Long);
        });
        using (ShmLoan loan = queue.Loan(maxLength, Long))
        {
            Fill(loan.Span, 4);
            loan.Commit(maxLength);
        }

        Assert.IsTrue(consumer.Wait(Long));
        byte[]? last = null;
        while (queue.TryDequeue(out byte[]? message))
        {
            last = message;
        }

        CollectionAssert.AreEqual(Expected(maxLength, 4), last);
    }

    [TestMethod]
    public void Loans_after_shutdown_are_refused_and_one_open_at_shutdown_is_still_delivered()
    {
        using TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        ShmLoan open = queue.Loan(8);
        open.Span.Fill(6);
        queue.Shutdown();
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Loan(8));
        open.Commit(8);
        CollectionAssert.AreEqual(new byte[] { 6, 6, 6, 6, 6, 6, 6, 6 }, queue.Dequeue(Long));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Dequeue(Long));
    }

    [TestMethod]
    public void Producers_and_consumers_on_threads_with_loans_of_random_lengths_lose_and_tear_nothing()
    {
        using TempSegment<ShmQueue> temp = NewQueue(16 << 10);
        ShmQueue queue = temp.Object;
        const int PerProducer = 5000;
        const int Producers = 2;
        Task[] producers = Enumerable.Range(0, Producers).Select(p => Task.Run(() =>
        {
            var random = new Random(p);
            for (int i = 0; i < PerProducer; i++)
            {
                int maxLength = random.Next(8, 2048);
                int length = random.Next(8, maxLength + 1);
                using ShmLoan loan = queue.Loan(maxLength, Long);
                Span<byte> span = loan.Span;
                BitConverter.TryWriteBytes(span, (p * PerProducer) + i);
                BitConverter.TryWriteBytes(span[4..], length);
                span[8..length].Fill((byte)i);
                if (i % 7 == 3)
                {
                    continue; // abandoned
                }

                loan.Commit(length);
            }
        })).ToArray();

        int expected = Producers * Enumerable.Range(0, PerProducer).Count(i => i % 7 != 3);
        int received = 0;
        var seen = new HashSet<int>();
        while (received < expected)
        {
            byte[] message = queue.Dequeue(Long);
            int id = BitConverter.ToInt32(message);
            Assert.AreEqual(BitConverter.ToInt32(message, 4), message.Length, $"message {id}: its length");
            Assert.IsTrue(seen.Add(id), $"message {id} delivered once");
            Assert.AreNotEqual(3, id % PerProducer % 7, "an abandoned loan is never delivered");
            for (int k = 8; k < message.Length; k++)
            {
                Assert.AreEqual((byte)(id % PerProducer), message[k], $"message {id}, byte {k}");
            }

            received++;
        }

        Assert.IsTrue(Task.WaitAll(producers, Long));
        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    public void A_producer_killed_while_holding_a_loan_costs_that_message_only()
    {
        using TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        queue.Enqueue([1]);
        using (ChildProcess child = ChildProcess.StartReady("queue-loan-hold", temp.Name, "500"))
        {
            queue.Enqueue([2]);
            CollectionAssert.AreEqual(new byte[] { 1 }, queue.Dequeue(Long));
            Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(200)), "a live producer's loan is waited for");
            child.Kill9();
        }

        CollectionAssert.AreEqual(new byte[] { 2 }, queue.Dequeue(Long), "the dead producer's loan is skipped once its death is proved");
        Assert.IsFalse(queue.TryDequeue(out _));

        // The ring goes on: its space comes back around.
        for (int i = 0; i < 100; i++)
        {
            using (ShmLoan loan = queue.Loan(500, Long))
            {
                Fill(loan.Span, i);
                loan.Commit(500);
            }

            CollectionAssert.AreEqual(Expected(500, i), queue.Dequeue(Long));
        }
    }

    [TestMethod]
    public void A_disposed_queue_lends_nothing()
    {
        TempSegment<ShmQueue> temp = NewQueue();
        ShmQueue queue = temp.Object;
        temp.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => queue.Loan(8));
    }
}

/// <summary>The misuse checks shared by the queue and pipe loan tests.</summary>
internal static class LoanMisuse
{
    /// <summary>
    /// Runs every misuse against loans from <paramref name="loan16"/> (16 bytes): leaves exactly one message, [1, 2, 3],
    /// committed. <paramref name="loanOf"/> takes a loan of any length; <paramref name="name"/> must appear in messages.
    /// </summary>
    public static void Check(Func<ShmLoan> loan16, int maxMessageLength, Func<int, ShmLoan> loanOf, string name)
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => loanOf(maxMessageLength + 1).Dispose());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => loanOf(-1).Dispose());

        ShmLoan none = default;
        Assert.IsFalse(none.IsOpen);
        none.Dispose();
        StringAssert.Contains(CommitFails<InvalidOperationException>(none, 0).Message, "default");

        // Too long, or negative: refused, and the loan stays open for a valid commit.
        ShmLoan loan = loan16();
        try
        {
            ShmLoan copy = loan;
            StringAssert.Contains(CommitFails<ArgumentOutOfRangeException>(copy, 17).Message, name);
            CommitFails<ArgumentOutOfRangeException>(copy, -1);
            Assert.IsTrue(loan.IsOpen);
            new byte[] { 1, 2, 3 }.CopyTo(loan.Span);
            loan.Commit(3);

            // Every copy of a committed loan is ended: a second commit, its span, and a commit after dispose throw.
            StringAssert.Contains(CommitFails<InvalidOperationException>(copy, 3).Message, name);
            Assert.IsFalse(copy.IsOpen);
            SpanFails(copy);
            loan.Dispose(); // after Commit: nothing to do
        }
        finally
        {
            loan.Dispose();
        }

        ShmLoan abandoned = loan16();
        abandoned.Dispose();
        CommitFails<InvalidOperationException>(abandoned, 1);

        // A later loan reuses the process-local state: the ended copies stay ended.
        ShmLoan next = loan16();
        Assert.IsFalse(abandoned.IsOpen);
        Assert.IsTrue(next.IsOpen);
        next.Dispose();
    }

    private static T CommitFails<T>(ShmLoan loan, int length)
        where T : Exception
    {
        try
        {
            loan.Commit(length);
        }
        catch (T e)
        {
            return e;
        }

        Assert.Fail($"Commit({length}) did not throw {typeof(T).Name}.");
        return null!;
    }

    private static void SpanFails(ShmLoan loan)
    {
        try
        {
            _ = loan.Span.Length;
        }
        catch (InvalidOperationException)
        {
            return;
        }

        Assert.Fail("The span of an ended loan was handed out.");
    }
}
