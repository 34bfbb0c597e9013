using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Loaned sends on a pipe end (<see cref="ShmConnection.Loan(int, CancellationToken)"/>, <see cref="ShmLoan"/>).</summary>
[TestClass]
public sealed class PipeLoanTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static byte[] Expected(int length, int seed)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((seed * 31) + i);
        }

        return bytes;
    }

    [TestMethod]
    public void Committed_shortened_empty_and_abandoned_loans_arrive_as_committed_in_order()
    {
        using var pipe = new PipePair("ploan");
        using (ShmLoan loan = pipe.B.Loan(200))
        {
            Assert.AreEqual(200, loan.Span.Length);
            Expected(200, 1).CopyTo(loan.Span);
            loan.Commit(200);
        }

        using (ShmLoan loan = pipe.B.Loan(1000))
        {
            Expected(10, 2).CopyTo(loan.Span);
            loan.Commit(10);
        }

        using (ShmLoan loan = pipe.B.Loan(50))
        {
            loan.Span.Fill(0xEE); // abandoned: never sent
        }

        using (ShmLoan loan = pipe.B.Loan(50))
        {
            loan.Commit(0);
        }

        pipe.B.Send([4]);
        CollectionAssert.AreEqual(Expected(200, 1), pipe.A.Receive(Long));
        CollectionAssert.AreEqual(Expected(10, 2), pipe.A.Receive(Long));
        Assert.AreEqual(0, pipe.A.Receive(Long).Length);
        CollectionAssert.AreEqual(new byte[] { 4 }, pipe.A.Receive(Long));
        Assert.IsFalse(pipe.A.TryReceive(out _, TimeSpan.Zero));
    }

    [TestMethod]
    public void Loans_of_every_size_around_a_small_ring_wrap_with_padding_and_keep_every_message_whole()
    {
        using var pipe = new PipePair("ploan-wrap", TestPipes.Options(capacity: 4096));
        int max = pipe.B.MaxMessageLength;
        for (int i = 0; i < 3000; i++)
        {
            int maxLength = i * 37 % (max + 1);
            int length = i * 13 % (maxLength + 1);
            using (ShmLoan loan = pipe.B.Loan(maxLength, Long))
            {
                Expected(length, i).CopyTo(loan.Span);
                loan.Commit(length);
            }

            CollectionAssert.AreEqual(Expected(length, i), pipe.A.Receive(Long), $"loan {i} ({length} of {maxLength} bytes)");
        }
    }

    [TestMethod]
    public void Deferred_messages_go_before_a_loan_and_its_commit_publishes_them()
    {
        using var pipe = new PipePair("ploan-defer");
        pipe.B.SendDeferred([1]);
        pipe.B.SendDeferred([2]);
        using (ShmLoan loan = pipe.B.Loan(1))
        {
            loan.Span[0] = 3;
            loan.Commit(1);
        }

        for (byte expected = 1; expected <= 3; expected++)
        {
            CollectionAssert.AreEqual(new[] { expected }, pipe.A.Receive(Long));
        }
    }

    [TestMethod]
    public void A_loan_holds_the_ends_turn_other_threads_sends_wait_for_it()
    {
        using var pipe = new PipePair("ploan-turn");
        ShmLoan loan = pipe.B.Loan(4);
        Task sender = Task.Run(() => pipe.B.Send([9], Long));
        Assert.IsFalse(sender.Wait(TimeSpan.FromMilliseconds(100)), "a send on the same end waits while a loan is open");
        new byte[] { 1, 2, 3, 4 }.CopyTo(loan.Span);
        loan.Commit(4);
        Assert.IsTrue(sender.Wait(Long));
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3, 4 }, pipe.A.Receive(Long));
        CollectionAssert.AreEqual(new byte[] { 9 }, pipe.A.Receive(Long));
    }

    [TestMethod]
    public void The_thread_holding_a_loan_cannot_send_or_take_another_loan_on_that_end_instead_of_waiting_for_itself()
    {
        using var pipe = new PipePair("ploan-self");
        ShmLoan loan = pipe.B.Loan(1);
        try
        {
            var send = Assert.ThrowsExactly<InvalidOperationException>(() => pipe.B.Send([2]));
            StringAssert.Contains(send.Message, pipe.Name);
            Assert.ThrowsExactly<InvalidOperationException>(() => pipe.B.Loan(1).Dispose());
            pipe.A.Send([3]); // the other end and the receive side are not held
            CollectionAssert.AreEqual(new byte[] { 3 }, pipe.B.Receive(Long));
            loan.Span[0] = 1;
            loan.Commit(1);
        }
        finally
        {
            loan.Dispose();
        }

        pipe.B.Send([2]);
        CollectionAssert.AreEqual(new byte[] { 1 }, pipe.A.Receive(Long));
        CollectionAssert.AreEqual(new byte[] { 2 }, pipe.A.Receive(Long));
    }

    [TestMethod]
    public void A_loan_on_a_shared_end_holds_its_send_lock_and_arrives_whole()
    {
        using var pipe = new PipePair("ploan-shared", share: true);
        for (int i = 0; i < 200; i++)
        {
            using (ShmLoan loan = pipe.B.Loan(100 + i, Long))
            {
                Expected(100 + i, i).CopyTo(loan.Span);
                loan.Commit(i % 2 == 0 ? 100 + i : 50);
            }

            CollectionAssert.AreEqual(Expected(i % 2 == 0 ? 100 + i : 50, i), pipe.A.Receive(Long), $"loan {i}");
        }
    }

    [TestMethod]
    public void Misuse_of_a_loan_throws_clear_exceptions()
    {
        using var pipe = new PipePair("ploan-misuse");
        LoanMisuse.Check(() => pipe.B.Loan(16), pipe.B.MaxMessageLength, n => pipe.B.Loan(n), pipe.Name);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, pipe.A.Receive(Long));
        Assert.IsFalse(pipe.A.TryReceive(out _, TimeSpan.Zero), "only the one valid commit of the checks was sent");

        using var oneWay = new PipePair("ploan-oneway", TestPipes.Options(duplex: false));
        Assert.ThrowsExactly<InvalidOperationException>(() => oneWay.A.Loan(1).Dispose(), "the creator's end of a one-way pipe only receives");
    }

    [TestMethod]
    public void A_loan_on_a_full_pipe_waits_times_out_or_is_cancelled_then_gets_the_freed_space()
    {
        using var pipe = new PipePair("ploan-full", TestPipes.Options(capacity: 4096));
        int maxLength = pipe.B.MaxMessageLength;
        int sent = 0;
        while (pipe.B.TrySend(new byte[maxLength], TimeSpan.Zero))
        {
            sent++;
        }

        var clock = Stopwatch.StartNew();
        Assert.IsFalse(pipe.B.TryLoan(maxLength, out ShmLoan none, TimeSpan.FromMilliseconds(100)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(90), $"waited {clock.Elapsed}");
        Assert.IsFalse(none.IsOpen);
        Assert.ThrowsExactly<TimeoutException>(() => pipe.B.Loan(maxLength, TimeSpan.FromMilliseconds(50)));
        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            Assert.ThrowsExactly<OperationCanceledException>(() => pipe.B.Loan(maxLength, cancel.Token));
        }

        Task<byte[]> receiver = Task.Run(() => pipe.A.Receive(Long)); // frees the space the loan waits for
        using (ShmLoan loan = pipe.B.Loan(maxLength, Long))
        {
            Expected(maxLength, 5).CopyTo(loan.Span);
            loan.Commit(maxLength);
        }

        Assert.IsTrue(receiver.Wait(Long));
        for (int i = 1; i < sent; i++)
        {
            Assert.AreEqual(maxLength, pipe.A.Receive(Long).Length);
        }

        CollectionAssert.AreEqual(Expected(maxLength, 5), pipe.A.Receive(Long));
    }

    [TestMethod]
    public void A_sender_killed_while_holding_a_loan_sent_what_it_committed_and_nothing_else()
    {
        using var pipe = new TempPipe("ploan-kill");
        ChildProcess.StartReadyThenKill9("pipe-loan-hold", pipe.Name);
        CollectionAssert.AreEqual(new byte[] { 1 }, pipe.A.Receive(Long));
        Assert.ThrowsExactly<ShmPeerClosedException>(() => pipe.A.Receive(Long), "the half-written loan is never delivered");
    }
}
