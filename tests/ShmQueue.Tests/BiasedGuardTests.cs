using System.Collections.Concurrent;
using ShmIpc.Endpoints;

namespace ShmIpc.Tests;

/// <summary>
/// The pipe's send and receive guard (<see cref="BiasedGuard"/>): one thread inside at a time whichever way it entered,
/// the bias given to a thread that keeps entering, taken away (after it leaves) by another thread, put back when that
/// thread gives up, and a biased thread's re-entry refused. The pipe-level cases (several threads sending on one end,
/// disposal during a call) are in PipeSharedTests and PipeLifetimeTests.
/// </summary>
[TestClass]
public sealed class BiasedGuardTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>A guard in a heap object, so several threads work on the one copy.</summary>
    private sealed class Box
    {
        public BiasedGuard Guard;
        public int Inside;
        public long Plain;
    }

    /// <summary>Waits without limit (spinning, then yielding), as a pipe call without a deadline does.</summary>
    private struct Forever : IGuardWait
    {
        private SpinWait _spinner;

        public bool KeepWaiting()
        {
            _spinner.SpinOnce(sleep1Threshold: 20);
            return true;
        }
    }

    /// <summary>Gives up after a number of looks.</summary>
    private struct Looks(int count) : IGuardWait
    {
        public int Asked { get; private set; }

        public bool KeepWaiting() => ++Asked < count;
    }

    private static void Enter(Box box)
    {
        if (!box.Guard.TryEnterBiased())
        {
            var wait = new Forever();
            Assert.IsTrue(box.Guard.EnterSlow(ref wait));
        }
    }

    private static void RunOn(Action action)
    {
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        Assert.IsTrue(thread.Join(Generous), "the thread finished");
        if (error is not null)
        {
            throw new AssertFailedException($"on the other thread: {error}", error);
        }
    }

    [TestMethod]
    public void A_thread_that_keeps_entering_gets_the_bias_and_another_thread_takes_it_away_after_it_left()
    {
        var box = new Box();
        int me = Environment.CurrentManagedThreadId;
        for (int i = 0; i < BiasedGuard.BiasAfter; i++)
        {
            Enter(box);
            box.Guard.Exit();
        }

        Assert.AreEqual(me, box.Guard.BiasedThread, "biased after BiasAfter entries in a row");
        Assert.IsTrue(box.Guard.TryEnterBiased(), "the biased thread enters with plain stores");
        Assert.IsTrue(box.Guard.IsHeld);
        box.Guard.Exit();
        Assert.IsFalse(box.Guard.IsHeld);

        RunOn(() =>
        {
            Assert.IsFalse(box.Guard.TryEnterBiased(), "another thread has no bias");
            Enter(box);
            Assert.AreEqual(0, box.Guard.BiasedThread, "the bias was taken away");
            Assert.IsTrue(box.Guard.IsHeld);
            box.Guard.Exit();
        });

        Assert.IsFalse(box.Guard.IsHeld);
        Assert.IsFalse(box.Guard.TryEnterBiased(), "the first thread lost its bias");
        Assert.IsTrue(box.Guard.TryEnterNow(), "and enters through the lock");
        box.Guard.Exit();
    }

    [TestMethod]
    public void A_thread_that_gives_up_waiting_for_the_biased_thread_puts_the_bias_back()
    {
        var box = new Box();
        int me = Environment.CurrentManagedThreadId;
        for (int i = 0; i <= BiasedGuard.BiasAfter; i++)
        {
            Enter(box);
            box.Guard.Exit();
        }

        Assert.AreEqual(me, box.Guard.BiasedThread);
        Assert.IsTrue(box.Guard.TryEnterBiased());
        RunOn(() =>
        {
            var wait = new Looks(50);
            Assert.IsFalse(box.Guard.EnterSlow(ref wait), "the biased thread is inside: no entry");
            Assert.AreEqual(50, wait.Asked, "it waited, then gave up");
            Assert.IsFalse(box.Guard.TryEnterNow());
        });

        Assert.AreEqual(me, box.Guard.BiasedThread, "the bias is back");
        Assert.IsTrue(box.Guard.IsHeld, "and the guard still held by its thread");
        Assert.IsFalse(box.Guard.TryEnterNow(), "the biased thread cannot enter twice");
        Assert.AreEqual(me, box.Guard.BiasedThread);
        box.Guard.Exit();
        Assert.IsFalse(box.Guard.IsHeld);
        Assert.IsTrue(box.Guard.TryEnterBiased(), "the bias still works");
        box.Guard.Exit();
        RunOn(() =>
        {
            Assert.IsTrue(box.Guard.TryEnterNow(), "free now: the other thread enters");
            box.Guard.Exit();
        });
    }

    [TestMethod]
    public void Threads_entering_in_bursts_are_never_inside_together()
    {
        // Bursts of 1 to 150 entries: some longer than BiasAfter, so the bias forms and is taken away again and again
        // while the other thread may be inside; a plain counter incremented inside loses no update.
        const int Threads = 3;
        const int Rounds = 150;
        var box = new Box();
        var errors = new ConcurrentQueue<string>();
        long expected = 0;
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            for (int round = 0; round < Rounds; round++)
            {
                int burst = 1 + ((round * 37 + t * 11) % 150);
                Interlocked.Add(ref expected, burst);
                for (int i = 0; i < burst; i++)
                {
                    Enter(box);
                    if (Interlocked.Increment(ref box.Inside) != 1)
                    {
                        errors.Enqueue($"thread {t} found another thread inside");
                    }

                    box.Plain++;
                    Interlocked.Decrement(ref box.Inside);
                    box.Guard.Exit();
                }
            }
        })).ToList();
        threads.ForEach(static t => t.Start());
        threads.ForEach(t => Assert.IsTrue(t.Join(Generous), "finished"));
        Assert.IsTrue(errors.IsEmpty, string.Join("\n", errors.Take(5)));
        Assert.AreEqual(Volatile.Read(ref expected), box.Plain, "no update lost inside the guard");
        Assert.IsFalse(box.Guard.IsHeld);
    }
}
