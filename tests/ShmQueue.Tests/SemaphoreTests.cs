using System.Diagnostics;
using ShmIpc.Memory;
using ShmIpc.Signaling;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

[TestClass]
public sealed class SemaphoreTests
{
    private static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(20);

    [TestMethod]
    public void A_post_in_another_process_wakes_a_waiter_here()
    {
        string name = TestNames.Unique("sem-x");
        using ShmSegment segment = RawSegments.Create(name);
        try
        {
            using NamedSemaphore semaphore = segment.OpenSemaphore(1);
            Assert.IsFalse(semaphore.TryWait(), "a new semaphore starts at zero");
            using ChildProcess child = ChildProcess.Start("raw-post", name, "1", "1");
            Assert.IsTrue(semaphore.Wait(TimeSpan.FromSeconds(30)), "the child's post should wake us");
            Assert.AreEqual("POSTED", child.WaitForLine("POSTED", ChildStart));
            Assert.AreEqual(0, child.WaitForExit(ChildStart));
            Assert.IsFalse(semaphore.TryWait(), "exactly one post");
        }
        finally
        {
            segment.Unlink();
        }
    }

    [TestMethod]
    public void A_post_here_wakes_a_waiter_in_another_process()
    {
        string name = TestNames.Unique("sem-y");
        using ShmSegment segment = RawSegments.Create(name);
        try
        {
            using NamedSemaphore semaphore = segment.OpenSemaphore(0);
            using ChildProcess child = ChildProcess.Start("raw-wait", name, "0", "30000");
            child.WaitForLine("READY", ChildStart);
            semaphore.Post();
            Assert.AreEqual("WOKE", child.ReadLine(ChildStart));
        }
        finally
        {
            segment.Unlink();
        }
    }

    [TestMethod]
    public void A_timed_wait_times_out_at_its_deadline()
    {
        string name = TestNames.Unique("sem-t");
        using ShmSegment segment = RawSegments.Create(name);
        try
        {
            using NamedSemaphore semaphore = segment.OpenSemaphore(0);
            var clock = Stopwatch.StartNew();
            Assert.IsFalse(semaphore.Wait(TimeSpan.FromMilliseconds(150)));
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(149), $"returned early: {clock.Elapsed}");
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(5), $"returned late: {clock.Elapsed}");
        }
        finally
        {
            segment.Unlink();
        }
    }

    [TestMethod]
    public void Wait_signal_wakes_a_sleeper_when_another_process_publishes()
    {
        string name = TestNames.Unique("sig");
        using ShmSegment segment = RawSegments.Create(name);
        try
        {
            using NamedSemaphore semaphore = segment.OpenSemaphore(0);
            WaitSignal signal = RawSegments.Signal(segment, semaphore);
            using ChildProcess child = ChildProcess.Start("raw-signal", name);
            child.WaitForLine("READY", ChildStart);
            child.WriteLine("go");
            var condition = new RawSegments.FlagSet(segment);
            Assert.IsTrue(signal.Wait(ref condition, ShmWaitStrategy.NoSpin, WaitSignal.DeadlineFrom(TimeSpan.FromSeconds(30)), CancellationToken.None));
            Assert.AreEqual(1, RawSegments.ReadFlag(segment));
        }
        finally
        {
            segment.Unlink();
        }
    }

    [TestMethod]
    public void A_waiter_whose_poster_is_killed_returns_at_its_deadline()
    {
        string name = TestNames.Unique("sig-k");
        using ShmSegment segment = RawSegments.Create(name);
        try
        {
            using NamedSemaphore semaphore = segment.OpenSemaphore(0);
            WaitSignal signal = RawSegments.Signal(segment, semaphore);
            using ChildProcess child = ChildProcess.Start("raw-signal", name);
            child.WaitForLine("READY", ChildStart);
            child.Kill9();

            var condition = new RawSegments.FlagSet(segment);
            var clock = Stopwatch.StartNew();
            bool woke = signal.Wait(ref condition, new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(50) },
                WaitSignal.DeadlineFrom(TimeSpan.FromMilliseconds(400)), CancellationToken.None);
            Assert.IsFalse(woke);
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(399), $"returned early: {clock.Elapsed}");
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(5), $"returned late: {clock.Elapsed}");
        }
        finally
        {
            segment.Unlink();
        }
    }

    [TestMethod]
    public void A_cancelled_wait_ends_promptly_with_OperationCanceledException()
    {
        string name = TestNames.Unique("sig-c");
        using ShmSegment segment = RawSegments.Create(name);
        try
        {
            using NamedSemaphore semaphore = segment.OpenSemaphore(0);
            WaitSignal signal = RawSegments.Signal(segment, semaphore);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            var clock = Stopwatch.StartNew();
            Assert.ThrowsExactly<OperationCanceledException>(() =>
            {
                var condition = new RawSegments.FlagSet(segment);
                signal.Wait(ref condition, new ShmWaitStrategy { SleepSlice = TimeSpan.FromSeconds(10) }, long.MaxValue, cts.Token);
            });
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(5), $"cancellation took {clock.Elapsed}");
        }
        finally
        {
            segment.Unlink();
        }
    }

    [TestMethod]
    public void Notify_without_sleepers_posts_nothing()
    {
        string name = TestNames.Unique("sig-n");
        using ShmSegment segment = RawSegments.Create(name);
        try
        {
            using NamedSemaphore semaphore = segment.OpenSemaphore(0);
            WaitSignal signal = RawSegments.Signal(segment, semaphore);
            for (int i = 0; i < 1000; i++)
            {
                signal.Notify();
            }

            Assert.IsFalse(semaphore.TryWait(), "no sleeper, so no post: the count stays at zero");
        }
        finally
        {
            segment.Unlink();
        }
    }
}
