using System.Diagnostics;
using System.Threading.Channels;
using ShmIpc.Async;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// The one async model (src/ShmQueue/Async): pending calls wait on a few waiter threads per process, are cancelled and
/// disposed promptly, settle their sleeper registrations, and allocate nothing per await in steady state.
/// </summary>
[TestClass]
public sealed class AsyncModelTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    internal static ShmPipeOptions Options(int capacity = 4096) => new()
    {
        Capacity = capacity,
        WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(50) },
    };

    private static int ThreadCount() => Directory.GetDirectories("/proc/self/task").Length;

    /// <summary>User + system CPU of this process's async waiter threads ("ShmIpc async N"), from /proc (10 ms ticks).</summary>
    private static double WaiterThreadsCpuMs() =>
        ThreadsCpuMs().Values.Where(t => t.Name.StartsWith("ShmIpc async", StringComparison.Ordinal)).Sum(t => t.Ms);

    /// <summary>CPU time (user + system, ms) of each thread of this process, by thread id, with the thread's name.</summary>
    private static Dictionary<int, (string Name, double Ms)> ThreadsCpuMs()
    {
        var threads = new Dictionary<int, (string Name, double Ms)>();
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                string comm = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                double ms = (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) * 10.0;
                threads[int.Parse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture)] = (comm, ms);
            }
            catch (IOException)
            {
                // The thread ended meanwhile.
            }
        }

        return threads;
    }

    [TestMethod]
    public void On_64_bit_glibc_Linux_the_waiter_threads_sleep_with_futex_waitv()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            Assert.Inconclusive("futex_waitv is checked on x86-64 Linux");
        }

        Assert.IsNull(Signaling.FutexMultiSemaphoreWait.SelfTest(), "the self-test of the glibc semaphore layout and futex_waitv");
        Assert.AreEqual("futex_waitv", AsyncWaitEngine.Mechanism, Signaling.MultiSemaphoreWait.FallbackReason);
    }

    [TestMethod]
    public async Task A_thousand_pending_receives_complete_on_a_bounded_number_of_threads()
    {
        const int Count = 1000;
        var a = new ShmConnection[Count];
        var b = new ShmConnection[Count];
        var names = new string[Count];
        try
        {
            for (int i = 0; i < Count; i++)
            {
                names[i] = TestNames.Unique("am");
                a[i] = ShmPipe.Create(names[i], Options());
                b[i] = ShmPipe.Connect(names[i], Options());
            }

            int before = ThreadCount();
            var pending = new Task<byte[]>[Count];
            for (int i = 0; i < Count; i++)
            {
                pending[i] = a[i].ReceiveAsync().AsTask();
            }

            Until.True(() => AsyncWaitEngine.ThreadCount > 0, Long, "a waiter thread runs");
            int during = ThreadCount();
            Assert.IsTrue(pending.All(t => !t.IsCompleted), "nothing arrived yet");
            Assert.IsTrue(during - before <= AsyncWaitEngine.MaxThreads + 2,
                $"threads before {before}, while 1000 receives wait {during} (waiter threads {AsyncWaitEngine.ThreadCount})");

            for (int i = 0; i < Count; i++)
            {
                b[i].Send(BitConverter.GetBytes(i));
            }

            byte[][] got = await Task.WhenAll(pending).WaitAsync(Long);
            for (int i = 0; i < Count; i++)
            {
                Assert.AreEqual(i, BitConverter.ToInt32(got[i]));
            }
        }
        finally
        {
            for (int i = 0; i < Count; i++)
            {
                b[i]?.Dispose();
                a[i]?.Dispose();
            }
        }

        Assert.AreEqual(0, names.Sum(n => n is null ? 0 : TestNames.ShmFilesOf(n).Length));
    }

    [TestMethod]
    public async Task A_cancelled_receive_ends_within_milliseconds_and_a_disposed_end_faults_its_pending_calls()
    {
        string name = TestNames.Unique("ac");
        using (ShmConnection a = ShmPipe.Create(name, Options()))
        using (ShmConnection b = ShmPipe.Connect(name, Options()))
        {
            using var cts = new CancellationTokenSource();
            ValueTask<byte[]> receive = a.ReceiveAsync(cts.Token);
            Until.True(() => a.MaxSemaphoreCount == 0 && AsyncWaitEngine.ThreadCount > 0, Long, "the receive waits");
            var clock = Stopwatch.StartNew();
            cts.Cancel();
            await Assert.ThrowsExactlyAsync<TaskCanceledException>(async () => await receive);
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromMilliseconds(100), $"cancelled after {clock.Elapsed}");

            // The end still works after the cancellation.
            ValueTask<byte[]> next = a.ReceiveAsync();
            b.Send([7]);
            CollectionAssert.AreEqual(new byte[] { 7 }, await next);

            Task<byte[]> orphan = a.ReceiveAsync().AsTask();
            Task<int> orphanInto = a.ReceiveAsync(new byte[16]).AsTask();
            clock.Restart();
            a.Dispose();
            await Assert.ThrowsExactlyAsync<ObjectDisposedException>(() => orphan.WaitAsync(Long));
            await Assert.ThrowsExactlyAsync<ObjectDisposedException>(() => orphanInto.WaitAsync(Long));
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(1), $"disposed after {clock.Elapsed}");
        }

        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public async Task A_disposed_queue_faults_pending_async_calls_and_a_cancelled_one_ends_at_once()
    {
        string name = TestNames.Unique("aq");
        var queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096 });
        using var cts = new CancellationTokenSource();
        Task<byte[]> cancelled = queue.DequeueAsync(cts.Token).AsTask();
        Task<byte[]> pending = queue.DequeueAsync().AsTask();
        cts.Cancel();
        await Assert.ThrowsExactlyAsync<TaskCanceledException>(() => cancelled.WaitAsync(Long));
        Assert.IsFalse(pending.IsCompleted);
        queue.Dispose();
        await Assert.ThrowsExactlyAsync<ObjectDisposedException>(() => pending.WaitAsync(Long));
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public async Task Many_cancelled_async_waits_leave_no_post_behind_so_a_blocking_receive_still_sleeps()
    {
        string name = TestNames.Unique("as");
        using (ShmConnection a = ShmPipe.Create(name, Options()))
        using (ShmConnection b = ShmPipe.Connect(name, Options()))
        {
            for (int i = 0; i < 300; i++)
            {
                using var cts = new CancellationTokenSource();
                ValueTask<byte[]> receive = a.ReceiveAsync(cts.Token);
                if ((i & 1) == 0)
                {
                    b.Send([1]); // races the cancellation: the registration may have been taken by this notifier
                }

                cts.Cancel();
                try
                {
                    await receive;
                }
                catch (OperationCanceledException)
                {
                }

                while (a.TryReceive(out _, TimeSpan.Zero))
                {
                }
            }

            // Posts owed to settled registrations are consumed within the settle timeout.
            Until.True(() => a.MaxSemaphoreCount == 0 && b.MaxSemaphoreCount == 0, Long, "no post is left in any semaphore");
            var clock = Stopwatch.StartNew();
            Assert.IsFalse(a.TryReceive(out _, TimeSpan.FromMilliseconds(200)));
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(180), $"the blocking receive returned after {clock.Elapsed}");
        }

        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public async Task A_steady_state_awaited_round_trip_allocates_nothing()
    {
        string name = TestNames.Unique("aa");
        using ShmConnection a = ShmPipe.Create(name, Options());
        using ShmConnection b = ShmPipe.Connect(name, Options());
        const int Warmup = 2000;
        const int Measured = 20000;
        Task echo = Task.Run(async () =>
        {
            var buffer = new byte[8];
            for (int i = 0; i < Warmup + Measured; i++)
            {
                int n = await b.ReceiveAsync(buffer.AsMemory()).ConfigureAwait(false);
                await b.SendAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
            }
        });

        // GC.GetTotalAllocatedBytes counts the whole process: a thread-pool thread injected on a loaded machine, or
        // the tail of an earlier test, lands in whatever window is open. A per-round-trip allocation shows in every
        // window, so the quietest window is the steady state's figure.
        const int Windows = 10;
        long[] allocated = await Task.Run(async () =>
        {
            var message = new byte[8];
            var reply = new byte[8];
            var windows = new long[Windows];
            long start = 0;
            for (int i = 0; i < Warmup + Measured; i++)
            {
                if (i >= Warmup && (i - Warmup) % (Measured / Windows) == 0)
                {
                    long now = GC.GetTotalAllocatedBytes(precise: true);
                    if (i > Warmup)
                    {
                        windows[((i - Warmup) / (Measured / Windows)) - 1] = now - start;
                    }

                    start = now;
                }

                await a.SendAsync(message).ConfigureAwait(false);
                _ = await a.ReceiveAsync(reply.AsMemory()).ConfigureAwait(false);
            }

            windows[Windows - 1] = GC.GetTotalAllocatedBytes(precise: true) - start;
            return windows;
        }).WaitAsync(TimeSpan.FromSeconds(120));
        await echo.WaitAsync(Long);

        double perRoundTrip = allocated.Min() / (double)(Measured / Windows);
        Assert.IsTrue(
            perRoundTrip < 1,
            $"{perRoundTrip:0.##} bytes allocated per awaited round trip in the quietest of {Windows} windows of {Measured / Windows} (bytes per window: {string.Join(", ", allocated)})");
    }

    [TestMethod]
    public async Task A_quick_answer_turns_the_caller_spin_on_and_a_pending_receive_then_burns_no_cpu()
    {
        string name = TestNames.Unique("ap");
        using (ShmConnection a = ShmPipe.Create(name, Options()))
        using (ShmConnection b = ShmPipe.Connect(name, Options()))
        {
            Assert.IsFalse(a.ReceiveWouldSpin, "a first call has no history: it does not spin");

            // A pending receive answered at once (well within 4 spins) turns the spin on; a loaded machine may need a few tries.
            bool spins = false;
            for (int attempt = 0; attempt < 1000 && !spins; attempt++)
            {
                ValueTask<byte[]> answered = a.ReceiveAsync();
                b.Send([1]);
                _ = await answered;
                spins = a.ReceiveWouldSpin;
            }

            Assert.IsTrue(spins, "a receive answered within microseconds turns the spin on for the next one");

            // Nothing comes now: the receive spins at most its bound, then waits on a waiter thread, burning nothing.
            var call = Stopwatch.StartNew();
            ValueTask<byte[]> receive = a.ReceiveAsync();
            call.Stop();
            Assert.IsFalse(receive.IsCompleted);
            Task<byte[]> pending = receive.AsTask();
            Dictionary<int, (string Name, double Ms)> threadsBefore = ThreadsCpuMs();
            double waitersBefore = WaiterThreadsCpuMs();
            var held = Stopwatch.StartNew();
            Assert.IsFalse(pending.Wait(TimeSpan.FromSeconds(1)), "nothing was sent");
            Dictionary<int, (string Name, double Ms)> threadsAfter = ThreadsCpuMs();
            double waiters = WaiterThreadsCpuMs() - waitersBefore;
            Assert.IsTrue(call.Elapsed < TimeSpan.FromMilliseconds(100), $"the call spun {call.Elapsed} before going pending");
            Assert.IsTrue(waiters <= 30, $"the waiter threads used {waiters:0} ms of CPU over {held.Elapsed.TotalMilliseconds:0} ms with one receive pending");

            // Anything spinning for the pending call would keep one thread busy for about the whole second. The process as a
            // whole is no measure: the runtime's own threads (tier-1 JIT of the ping-pong just run, GC, the tail of an earlier
            // test) used 530 ms between them once in CI, none of them near a whole core.
            var busiest = threadsAfter
                .Select(t => (t.Key, t.Value.Name, Ms: t.Value.Ms - (threadsBefore.TryGetValue(t.Key, out var b) ? b.Ms : 0)))
                .OrderByDescending(t => t.Ms)
                .ToList();
            Assert.IsTrue(
                busiest[0].Ms < 0.6 * held.Elapsed.TotalMilliseconds,
                $"a thread stayed busy with one receive pending: {string.Join(", ", busiest.Take(3).Select(t => $"{t.Name} ({t.Key}) {t.Ms:0} ms"))} over {held.Elapsed.TotalMilliseconds:0} ms");

            // A wait that long turns the spin off: the next call goes pending at once.
            b.Send([5]);
            CollectionAssert.AreEqual(new byte[] { 5 }, await pending.WaitAsync(Long));
            Assert.IsFalse(a.ReceiveWouldSpin, "after a one-second wait the next receive does not spin");
        }

        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public async Task Async_waits_of_shared_state_complete_through_the_waiter_threads_and_fault_at_dispose()
    {
        string name = TestNames.Unique("al");
        using var lk = ShmLock.Create(name);
        lk.Acquire();
        Task acquire = Task.Run(async () => await lk.AcquireAsync());
        Assert.AreNotSame(acquire, await Task.WhenAny(acquire, Task.Delay(50)), "the acquire waits while the lock is held");
        lk.Release();
        await acquire.WaitAsync(Long);
        lk.Release();

        string eventName = TestNames.Unique("ae");
        var ev = ShmEvent.Create(eventName);
        ValueTask wait = ev.WaitAsync();
        ev.Set();
        await wait.AsTask().WaitAsync(Long);
        ev.Reset();
        Task orphan = ev.WaitAsync().AsTask();
        ev.Dispose();
        await Assert.ThrowsExactlyAsync<ObjectDisposedException>(() => orphan.WaitAsync(Long));

        string semName = TestNames.Unique("asem");
        using var sem = ShmSemaphore.Create(semName, 0);
        using var cts = new CancellationTokenSource();
        ValueTask cancelled = sem.WaitAsync(cts.Token);
        ValueTask taken = sem.WaitAsync();
        cts.Cancel();
        await Assert.ThrowsExactlyAsync<TaskCanceledException>(async () => await cancelled);
        sem.Release();
        await taken.AsTask().WaitAsync(Long);
        Assert.AreEqual(0, sem.CurrentCount);
    }

    [TestMethod]
    public async Task ReadAllAsync_on_a_pipe_end_yields_every_message_and_ends_when_the_peer_closes()
    {
        string name = TestNames.Unique("ar");
        using ShmConnection a = ShmPipe.Create(name, Options());
        ShmConnection b = ShmPipe.Connect(name, Options());
        Task<List<int>> reader = Task.Run(async () =>
        {
            var seen = new List<int>();
            await foreach (int value in a.ReadAllAsync<int>())
            {
                seen.Add(value);
            }

            return seen;
        });
        for (int i = 0; i < 100; i++)
        {
            await b.SendAsync(BitConverter.GetBytes(i));
        }

        b.Dispose();
        CollectionAssert.AreEqual(Enumerable.Range(0, 100).ToList(), await reader.WaitAsync(Long));
    }
}
