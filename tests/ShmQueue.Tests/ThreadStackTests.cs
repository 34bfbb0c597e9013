using System.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Signaling;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// The thread identity the queue's call guard uses instead of a thread-static read (<see cref="ThreadStack"/>): a thread
/// is recognised by its stack while it lives, never another thread, and not after it exited.
/// </summary>
[TestClass]
public sealed class ThreadStackTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [TestMethod]
    public void A_thread_is_recognised_by_its_stack_and_no_other_living_thread_is()
    {
        RequireLinux();
        ThreadStack described = default;
        bool describedOk = false;
        bool recognisedBySelf = false;
        using var owner = new HeldThread(() =>
        {
            describedOk = ThreadStack.TryDescribeCurrentThread(out described);
            recognisedBySelf = described.IsCurrentThread() && Deeper(described);
        });
        Assert.IsTrue(describedOk, "a thread pthreads started can be described");
        Assert.IsTrue(recognisedBySelf, "the thread recognises itself, also from a deeper frame");
        Assert.IsTrue(described.IsKnown);
        Assert.IsFalse(described.HasExited);
        Assert.IsFalse(described.IsCurrentThread(), "the test thread is not the described one");
        bool seenByOther = true;
        var other = new Thread(() => seenByOther = described.IsCurrentThread());
        other.Start();
        Assert.IsTrue(other.Join(Patience));
        Assert.IsFalse(seenByOther, "another living thread is not the described one");
        Assert.IsFalse(default(ThreadStack).IsCurrentThread(), "an unknown thread is nobody");
    }

    [TestMethod]
    public void A_thread_that_exited_is_not_recognised_even_by_a_thread_that_reuses_its_stack()
    {
        RequireLinux();
        ThreadStack gone = default;
        ThreadStack again = default;
        bool describedOk = false;
        var first = new Thread(() =>
            describedOk = ThreadStack.TryDescribeCurrentThread(out gone) && ThreadStack.TryDescribeCurrentThread(out again) && again.IsCurrentThread());
        first.Start();
        Assert.IsTrue(first.Join(Patience));
        Assert.IsTrue(describedOk, "described, and described again (a runtime attaching the OS thread twice)");

        // The exit destructor runs as the OS thread ends, which may be a moment after Join returns.
        var waited = Stopwatch.StartNew();
        while (!gone.HasExited && waited.Elapsed < Patience)
        {
            Thread.Yield();
        }

        Assert.IsTrue(gone.HasExited, "the thread's exit marked its description");
        Assert.IsTrue(again.HasExited, "a second description shares the first's exit mark (else it would read alive for ever)");

        // New threads of the same stack size are likely to get the freed stack from glibc's cache; none may pass.
        for (int i = 0; i < 8; i++)
        {
            bool recognised = true;
            var next = new Thread(() => recognised = gone.IsCurrentThread());
            next.Start();
            Assert.IsTrue(next.Join(Patience));
            Assert.IsFalse(recognised, $"thread {i} started after the exit is not the exited one");
        }
    }

    [TestMethod]
    public void A_queue_enters_through_its_cached_slot_only_on_the_slots_thread()
    {
        RequireLinux();
        using ShmQueue queue = ShmQueue.Create(TestNames.Unique("q-stackid"), new ShmQueueOptions { Capacity = 4096 });
        long endpoint = ThreadCallSlot.NewEndpointId(); // a number no queue has
        ThreadCallSlot? ownerSlot = null;
        bool cachedAfterFirstCall = false;
        bool secondCallDone = false;
        bool ownerEntersCached = false;
        bool occupiedRefused = false;
        using var owner = new HeldThread(() =>
        {
            queue.TryEnqueue([1]);
            ownerSlot = ThreadCallSlot.ForCurrentThread;
            cachedAfterFirstCall = ReferenceEquals(ownerSlot, queue.RecentWriteSlot);
            secondCallDone = queue.TryEnqueue([2]); // through the cache
            ownerEntersCached = ownerSlot.TryEnterOnOwnerThread(endpoint);
            if (ownerEntersCached)
            {
                occupiedRefused = !ownerSlot.TryEnterOnOwnerThread(endpoint);
                ownerSlot.Exit();
            }
        });
        Assert.IsTrue(cachedAfterFirstCall, "the queue cached the slot of the thread that entered");
        Assert.IsTrue(secondCallDone);
        Assert.IsTrue(ownerEntersCached, "the owner enters its own slot without thread-local storage");
        Assert.IsTrue(occupiedRefused, "an occupied slot is not entered twice");
        Assert.IsTrue(ownerSlot!.KnowsOwner);
        Assert.IsFalse(ownerSlot.TryEnterOnOwnerThread(endpoint), "another thread never enters the owner's slot");

        // Reading calls have their own cache: this thread's first dequeue takes it, and leaves the owner's write cache.
        ThreadCallSlot mine = ThreadCallSlot.ForCurrentThread;
        Assert.IsTrue(queue.TryDequeue(out byte[]? first));
        CollectionAssert.AreEqual(new byte[] { 1 }, first);
        Assert.AreSame(mine, queue.RecentReadSlot, "the first reading call takes the empty read cache");
        Assert.AreSame(ownerSlot, queue.RecentWriteSlot, "a reading call leaves the write cache");

        // This thread's writing calls go through its own slot; the write cache stays the owner's until this thread has
        // missed it CacheTakeOverMisses times in a row, then it becomes this thread's.
        Assert.IsTrue(queue.TryEnqueue([3]));
        Assert.AreSame(ownerSlot, queue.RecentWriteSlot, "one miss does not take the cache over");
        for (int i = 1; i < ThreadCallSlot.CacheTakeOverMisses - 1; i++)
        {
            queue.TryEnqueue([3]);
            queue.TryDequeue(out _);
        }

        Assert.AreSame(ownerSlot, queue.RecentWriteSlot, "nor do CacheTakeOverMisses - 1");
        queue.TryEnqueue([3]);
        Assert.AreSame(mine, queue.RecentWriteSlot, "a run of CacheTakeOverMisses misses does");
    }

    [TestMethod]
    public void Writing_and_reading_misses_count_apart_towards_a_take_over()
    {
        RequireLinux();
        // Both caches held by two other (live) threads; this thread alternates Enqueue and Dequeue: each cache changes
        // hands after CacheTakeOverMisses misses of it, neither sooner (misses summed per object) nor never (misses of
        // one cache resetting the other's run).
        using ShmQueue queue = ShmQueue.Create(TestNames.Unique("q-stackid-split"), new ShmQueueOptions { Capacity = 4096 });
        ThreadCallSlot? writer = null;
        ThreadCallSlot? reader = null;
        using var writing = new HeldThread(() =>
        {
            queue.TryEnqueue([1]);
            writer = ThreadCallSlot.ForCurrentThread;
        });
        using var reading = new HeldThread(() =>
        {
            queue.TryDequeue(out _);
            reader = ThreadCallSlot.ForCurrentThread;
        });
        Assert.AreSame(writer, queue.RecentWriteSlot);
        Assert.AreSame(reader, queue.RecentReadSlot);

        for (int i = 0; i < ThreadCallSlot.CacheTakeOverMisses - 1; i++)
        {
            Assert.IsTrue(queue.TryEnqueue([2]));
            Assert.IsTrue(queue.TryDequeue(out _));
        }

        Assert.AreSame(writer, queue.RecentWriteSlot, "CacheTakeOverMisses - 1 write misses, interleaved with as many read misses");
        Assert.AreSame(reader, queue.RecentReadSlot, "CacheTakeOverMisses - 1 read misses");
        Assert.IsTrue(queue.TryEnqueue([3]));
        Assert.AreSame(ThreadCallSlot.ForCurrentThread, queue.RecentWriteSlot, "the write cache changes hands at its own 64th miss");
        Assert.AreSame(reader, queue.RecentReadSlot);
        Assert.IsTrue(queue.TryDequeue(out _));
        Assert.AreSame(ThreadCallSlot.ForCurrentThread, queue.RecentReadSlot, "and the read cache at its own");
    }

    [TestMethod]
    public void A_lost_race_spins_longer_after_each_loss_up_to_a_cap()
    {
        Assert.AreEqual(LostRace.FirstSpin, LostRace.SpinFor(1));
        Assert.AreEqual(2 * LostRace.FirstSpin, LostRace.SpinFor(2));
        Assert.AreEqual(8 * LostRace.FirstSpin, LostRace.SpinFor(4));
        Assert.AreEqual(LostRace.MaxSpin, LostRace.SpinFor(5));
        Assert.AreEqual(LostRace.MaxSpin, LostRace.SpinFor(1_000));
        Assert.AreEqual(LostRace.MaxSpin, LostRace.SpinFor(0), "a count that wrapped gets the longest spin, never a negative shift");
        Assert.AreEqual(LostRace.MaxSpin, LostRace.SpinFor(int.MinValue));
    }

    [TestMethod]
    public void Dispose_waits_for_a_thread_inside_through_the_cached_slot()
    {
        RequireLinux();
        // One thread calls without pause (after its first call every call finds its slot through the queue's cache)
        // while this thread disposes: the caller must leave with ObjectDisposedException, never touch the unmapped
        // memory (the test process would crash), and Dispose must unlink the segment (it did not give up waiting).
        string name = TestNames.Unique("q-stackid-dispose");
        ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 64 << 10, MaxMessageLength = 64 });
        long calls = 0;
        var caller = Task.Factory.StartNew(() =>
        {
            byte[] message = new byte[64];
            byte[] buffer = new byte[64];
            while (true)
            {
                queue.TryEnqueue(message);
                queue.TryDequeue(buffer, out _);
                Interlocked.Increment(ref calls);
            }
        }, TaskCreationOptions.LongRunning);

        try
        {
            var waited = Stopwatch.StartNew();
            while (Interlocked.Read(ref calls) < 50_000 && waited.Elapsed < Patience && !caller.IsCompleted)
            {
                Thread.Yield();
            }

            Assert.IsTrue(Interlocked.Read(ref calls) >= 50_000, "the caller ran");
            Assert.IsNotNull(queue.RecentWriteSlot, "the caller's slot is cached: its enqueues enter through the cache");
            Assert.IsNotNull(queue.RecentReadSlot, "and its dequeues");
            Assert.IsTrue(queue.RecentWriteSlot.KnowsOwner);
        }
        finally
        {
            queue.Dispose();
        }

        var e = Assert.ThrowsExactly<AggregateException>(() => caller.Wait(Patience));
        Assert.IsInstanceOfType<ObjectDisposedException>(e.InnerException);
        Assert.IsFalse(File.Exists("/dev/shm/shmipc." + name), "Dispose unlinked the segment");
    }

    /// <summary>
    /// A thread that runs <c>work</c> and then stays alive (its stack in use) until disposed. Work records what it sees in
    /// the test's locals (an assertion failing on another thread would end the test host); an exception it throws is
    /// reported here.
    /// </summary>
    private sealed class HeldThread : IDisposable
    {
        private readonly ManualResetEventSlim _ready = new();
        private readonly ManualResetEventSlim _release = new();
        private readonly Thread _thread;
        private Exception? _failure;

        public HeldThread(Action work)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    work();
                }
                catch (Exception e)
                {
                    _failure = e;
                }

                _ready.Set();
                _release.Wait(Patience);
            });
            _thread.Start();
            Assert.IsTrue(_ready.Wait(Patience), "the held thread did its work");
            Assert.IsNull(_failure, $"the held thread's work threw: {_failure}");
        }

        public void Dispose()
        {
            _release.Set();
            Assert.IsTrue(_thread.Join(Patience));
            _ready.Dispose();
            _release.Dispose();
        }
    }

    private static bool Deeper(ThreadStack stack)
    {
        Span<byte> pad = stackalloc byte[4096];
        pad[^1] = 1;
        return stack.IsCurrentThread() && pad[^1] == 1;
    }

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("ThreadStack describes threads on Linux only (elsewhere the queue reads thread-local storage).");
        }
    }
}
