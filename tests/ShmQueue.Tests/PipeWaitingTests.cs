using System.Diagnostics;

namespace ShmIpc.Tests;

/// <summary>Waiting on pipe ends within one process: concurrent receives, Poll, WaitAny, async send and receive. Cross-process: <see cref="PipeProcessTests"/>.</summary>
[TestClass]
public sealed class PipeWaitingTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    [TestMethod]
    public void Concurrent_receives_on_one_end_take_turns_and_each_gets_one_message()
    {
        using var pair = new PipePair("conc");
        using var view = new PipeFileView(pair.Name);
        byte[]?[] got = new byte[2][];
        Exception?[] errors = new Exception?[2];
        Thread Receiver(int k) => new(() =>
        {
            try
            {
                _ = pair.B.TryReceive(out got[k], Generous);
            }
            catch (Exception e)
            {
                errors[k] = e;
            }
        });
        Thread first = Receiver(0), second = Receiver(1);
        first.Start();
        Until.True(() => view.DataSleepers(1) > 0, Generous, "the first receiver sleeps");
        second.Start();
        pair.A.Send([1]);
        pair.A.Send([2]);
        Assert.IsTrue(first.Join(Generous) && second.Join(Generous));
        Assert.IsTrue(errors[0] is null && errors[1] is null, $"{errors[0]} {errors[1]}");
        CollectionAssert.AreEquivalent(new byte[] { 1, 2 }, new[] { got[0]![0], got[1]![0] });
    }

    [TestMethod]
    public void Poll_returns_within_its_timeout_and_sees_a_message()
    {
        using var pair = new PipePair("poll");
        var clock = Stopwatch.StartNew();
        Assert.IsFalse(pair.B.Poll(TimeSpan.FromMilliseconds(120)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(119) && clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.Elapsed}");
        pair.A.Send([5]);
        Assert.IsTrue(pair.B.Poll(TimeSpan.Zero));
        Assert.IsTrue(pair.B.Poll(TimeSpan.FromSeconds(1)), "polling consumes nothing");
        CollectionAssert.AreEqual(new byte[] { 5 }, pair.B.Receive());
    }

    [TestMethod]
    public void WaitAny_reports_the_ready_connections_and_times_out_when_none_is()
    {
        using var one = new PipePair("any1");
        using var two = new PipePair("any2");
        using var three = new PipePair("any3");
        ShmConnection[] readers = [one.B, two.B, three.A];

        var clock = Stopwatch.StartNew();
        Assert.AreEqual(0, ShmConnection.WaitAny(readers, TimeSpan.FromMilliseconds(100)).Count);
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(99) && clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.Elapsed}");

        two.A.Send([2]);
        three.B.Send([3]);
        CollectionAssert.AreEqual(new[] { two.B, three.A }, ShmConnection.WaitAny(readers, TimeSpan.FromSeconds(5)).ToArray());

        two.B.Receive();
        three.A.Receive();
        one.A.Dispose();
        CollectionAssert.AreEqual(new[] { one.B }, ShmConnection.WaitAny(readers, TimeSpan.FromSeconds(5)).ToArray(), "a closed peer is ready (end of file)");
    }

    [TestMethod]
    public void WaitAny_wakes_for_a_message_sent_by_another_thread_while_it_sleeps()
    {
        using var one = new PipePair("anyw1");
        using var two = new PipePair("anyw2");
        using var view = new PipeFileView(one.Name);
        var sender = new Thread(() =>
        {
            Until.True(() => view.DataSleepers(1) > 0, Generous, "WaitAny sleeps");
            two.A.Send([9]);
        });
        sender.Start();
        var clock = Stopwatch.StartNew();
        IReadOnlyList<ShmConnection> ready = ShmConnection.WaitAny([one.B, two.B], Generous);
        Assert.IsTrue(sender.Join(Generous));
        CollectionAssert.AreEqual(new[] { two.B }, ready.ToArray());
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.Elapsed}");
    }

    [TestMethod]
    public async Task Async_send_and_receive_complete_and_cancel()
    {
        using var pair = new PipePair("async", TestPipes.Options(capacity: 1024));
        await pair.A.SendAsync(new byte[] { 1 });
        CollectionAssert.AreEqual(new byte[] { 1 }, await pair.B.ReceiveAsync());

        ValueTask<byte[]> pending = pair.B.ReceiveAsync();
        Assert.IsFalse(pending.IsCompleted);
        await pair.A.SendAsync(new byte[] { 2 });
        CollectionAssert.AreEqual(new byte[] { 2 }, await pending.AsTask().WaitAsync(Generous));

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAsync<OperationCanceledException>(async () => await pair.B.ReceiveAsync(cts.Token).AsTask().WaitAsync(Generous));

        while (pair.A.TrySend(new byte[200], TimeSpan.Zero))
        {
        }

        ValueTask send = pair.A.SendAsync(new byte[200]);
        Assert.IsFalse(send.IsCompleted, "full: waits");
        Assert.AreEqual(200, pair.B.Receive().Length);
        await send.AsTask().WaitAsync(Generous);
    }
}
