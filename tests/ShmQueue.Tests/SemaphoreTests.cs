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
        using TempSegment<ShmSegment> temp = RawSegments.CreateTemp("sem-x");
        ShmSegment segment = temp.Object;
        using NamedSemaphore semaphore = segment.OpenSemaphore(1);
        Assert.IsFalse(semaphore.TryWait(), "a new semaphore starts at zero");
        using ChildProcess child = ChildProcess.Start("raw-post", temp.Name, "1", "1");
        Assert.IsTrue(semaphore.Wait(TimeSpan.FromSeconds(30)), "the child's post should wake us");
        Assert.AreEqual("POSTED", child.WaitForLine("POSTED", ChildStart));
        Assert.AreEqual(0, child.WaitForExit(ChildStart));
        Assert.IsFalse(semaphore.TryWait(), "exactly one post");
    }

    [TestMethod]
    public void A_post_here_wakes_a_waiter_in_another_process()
    {
        using TempSegment<ShmSegment> temp = RawSegments.CreateTemp("sem-y");
        ShmSegment segment = temp.Object;
        using NamedSemaphore semaphore = segment.OpenSemaphore(0);
        using ChildProcess child = ChildProcess.StartReady("raw-wait", temp.Name, "0", "30000");
        semaphore.Post();
        Assert.AreEqual("WOKE", child.ReadLine(ChildStart));
    }

    [TestMethod]
    public void A_timed_wait_times_out_at_its_deadline()
    {
        using TempSegment<ShmSegment> temp = RawSegments.CreateTemp("sem-t");
        ShmSegment segment = temp.Object;
        using NamedSemaphore semaphore = segment.OpenSemaphore(0);
        var clock = Stopwatch.StartNew();
        Assert.IsFalse(semaphore.Wait(TimeSpan.FromMilliseconds(150)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(149), $"returned early: {clock.Elapsed}");
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(5), $"returned late: {clock.Elapsed}");
    }

    [TestMethod]
    public void Wait_signal_wakes_a_sleeper_when_another_process_publishes()
    {
        using var rig = new SignalRig("sig");
        using ChildProcess child = ChildProcess.StartReady("raw-signal", rig.Name);
        child.WriteLine("go");
        var condition = new RawSegments.FlagSet(rig.Segment);
        Assert.IsTrue(rig.Signal.Wait(ref condition, ShmWaitStrategy.NoSpin, WaitSignal.DeadlineFrom(TimeSpan.FromSeconds(30)), CancellationToken.None));
        Assert.AreEqual(1, RawSegments.ReadFlag(rig.Segment));
    }

    [TestMethod]
    public void A_waiter_whose_poster_is_killed_returns_at_its_deadline()
    {
        using var rig = new SignalRig("sig-k");
        using ChildProcess child = ChildProcess.StartReady("raw-signal", rig.Name);
        child.Kill9();

        var condition = new RawSegments.FlagSet(rig.Segment);
        var clock = Stopwatch.StartNew();
        bool woke = rig.Signal.Wait(ref condition, new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(50) },
            WaitSignal.DeadlineFrom(TimeSpan.FromMilliseconds(400)), CancellationToken.None);
        Assert.IsFalse(woke);
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(399), $"returned early: {clock.Elapsed}");
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(5), $"returned late: {clock.Elapsed}");
    }

    [TestMethod]
    public void A_cancelled_wait_ends_promptly_with_OperationCanceledException()
    {
        using var rig = new SignalRig("sig-c");
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var clock = Stopwatch.StartNew();
        Assert.ThrowsExactly<OperationCanceledException>(() =>
        {
            var condition = new RawSegments.FlagSet(rig.Segment);
            rig.Signal.Wait(ref condition, new ShmWaitStrategy { SleepSlice = TimeSpan.FromSeconds(10) }, long.MaxValue, cts.Token);
        });
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(5), $"cancellation took {clock.Elapsed}");
    }

    [TestMethod]
    public void Notify_without_sleepers_posts_nothing()
    {
        using var rig = new SignalRig("sig-n");
        for (int i = 0; i < 1000; i++)
        {
            rig.Signal.Notify();
        }

        Assert.IsFalse(rig.Semaphore.TryWait(), "no sleeper, so no post: the count stays at zero");
    }

    /// <summary>A raw segment under a unique name, its semaphore 0 and a wait signal over the sleeper count, released together.</summary>
    private sealed class SignalRig : IDisposable
    {
        private readonly TempSegment<ShmSegment> _segment;

        public SignalRig(string what)
        {
            _segment = RawSegments.CreateTemp(what);
            Semaphore = Segment.OpenSemaphore(0);
            Signal = RawSegments.Signal(Segment, Semaphore);
        }

        public string Name => _segment.Name;

        public ShmSegment Segment => _segment.Object;

        public NamedSemaphore Semaphore { get; }

        public WaitSignal Signal { get; }

        public void Dispose()
        {
            Semaphore.Dispose();
            _segment.Dispose();
        }
    }
}
