using System.Buffers.Binary;
using System.Diagnostics;
using ShmIpc.Signaling;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// The sleeper protocol of LAYOUT.md §4 in both forms (Signaling/SleeperFence.cs): on a marked segment registered publishers
/// skip the full fence and sleepers issue membarrier(GLOBAL_EXPEDITED); on an unmarked one (SHMIPC_FENCE=full, or
/// SleeperFence.CreateUnmarkedForTests) everybody fences. Each stress test plays bursts of 1-4 messages, after a random
/// pause, against an echo that sleeps before every message (FenceEcho: no spin, ten-second slices) and answers each burst;
/// this side sleeps the same way for the answer. A missed wake-up leaves a side asleep for ten seconds, so "every answer
/// within <see cref="ReplyDeadline"/>" is the whole, deterministic assertion; no speed is asserted.
/// </summary>
[TestClass]
public sealed class FenceTests
{
    /// <summary>Generous on a loaded two-core machine, and shorter than the ten seconds a missed wake would cost.</summary>
    private static readonly TimeSpan ReplyDeadline = TimeSpan.FromSeconds(8);

    /// <summary>Rounds stop after this long (or <see cref="MaxRounds"/>), but never before <see cref="MinRounds"/>.</summary>
    private static readonly TimeSpan RoundBudget = TimeSpan.FromSeconds(1);

    private const int MinRounds = 30;
    private const int MaxRounds = 10_000;

    private static void RequireMembarrier(bool marked)
    {
        if (marked && !(SleeperFence.CanWaitOnMarkedSegments && SleeperFence.MayPublishWithoutFence))
        {
            Assert.Inconclusive($"membarrier(GLOBAL_EXPEDITED) is not usable by this process ({SleeperFence.ModeName}): nothing marked to test.");
        }
    }

    /// <summary>Segments this thread creates in the scope are marked (the asymmetric form) or not (the symmetric one).</summary>
    private static IDisposable Marking(bool marked) => marked ? SleeperFence.CreateMarkedForTests() : SleeperFence.CreateUnmarkedForTests();

    /// <summary>The queue's Features word (control +20) or the pipe's Flags word (control +20), read from the file as a peer would.</summary>
    private static int ControlWord20(string name)
    {
        string file = Path.Combine("/dev/shm", "shmipc." + name);
        using FileStream stream = File.OpenRead(file);
        byte[] bytes = new byte[128 + 24];
        stream.ReadExactly(bytes);
        return BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(128 + 20));
    }

    [TestMethod]
    public void Segments_are_marked_exactly_when_this_process_publishes_without_the_fence()
    {
        string marked = TestNames.Unique("fence-mark-q"), unmarked = TestNames.Unique("fence-nomark-q");
        string markedPipe = TestNames.Unique("fence-mark-p"), unmarkedPipe = TestNames.Unique("fence-nomark-p");
        string plain = TestNames.Unique("fence-default-q");
        using (ShmQueue queue = ShmQueue.Create(plain))
        {
            Assert.AreEqual(SleeperFence.MarkNewSegments ? 4 : 0, ControlWord20(plain) & 4, "queue Features bit 2, by default");
        }

        bool available = SleeperFence.CanWaitOnMarkedSegments;
        using (SleeperFence.CreateMarkedForTests())
        using (ShmQueue queue = ShmQueue.Create(marked))
        using (ShmConnection pipe = ShmPipe.Create(markedPipe))
        using (ShmQueue opened = ShmQueue.Open(marked))
        using (ShmConnection connected = ShmPipe.Connect(markedPipe))
        {
            Assert.AreEqual(available ? 4 : 0, ControlWord20(marked) & 4, "queue Features bit 2");
            Assert.AreEqual(available ? 4 : 0, ControlWord20(markedPipe) & 4, "pipe Flags bit 2");
        }

        using (SleeperFence.CreateUnmarkedForTests())
        using (ShmQueue queue = ShmQueue.Create(unmarked))
        using (ShmConnection pipe = ShmPipe.Create(unmarkedPipe))
        using (ShmQueue opened = ShmQueue.Open(unmarked))
        {
            Assert.AreEqual(0, ControlWord20(unmarked) & 2, "an unmarked queue");
            Assert.AreEqual(0, ControlWord20(unmarkedPipe) & 4, "an unmarked pipe");
        }

        Assert.IsNull(SleeperFence.ProblemWithMark(false));
        Assert.AreEqual(!SleeperFence.CanWaitOnMarkedSegments, SleeperFence.ProblemWithMark(true) is not null);
    }

    [TestMethod]
    public void A_signal_skips_the_fence_only_on_a_marked_segment_of_a_registered_process()
    {
        int sleepers = 0;
        string name = TestNames.Unique("fence-sig");
        string osName = $"shmipc.{name}.s0";
        using NamedSemaphore semaphore = PosixNamedSemaphore.Create(osName, 0b110_000_000);
        try
        {
            unsafe
            {
                var plain = new WaitSignal(&sleepers, semaphore);
                var marked = new WaitSignal(&sleepers, semaphore, asymmetricFence: true);
                Assert.IsFalse(plain.PublishesWithoutFence);
                Assert.AreEqual(SleeperFence.MayPublishWithoutFence, marked.PublishesWithoutFence);
                Assert.AreEqual(!SleeperFence.FullFenceForced && SleeperFence.CanWaitOnMarkedSegments, marked.PublishesWithoutFence);

                // A registration on a marked signal runs the membarrier and counts as one sleeper; settling takes it back.
                if (SleeperFence.CanWaitOnMarkedSegments)
                {
                    marked.Register();
                    Assert.AreEqual(1, Volatile.Read(ref sleepers));
                    Assert.IsTrue(marked.TryTakeBackRegistration());
                    Assert.AreEqual(0, Volatile.Read(ref sleepers));
                }
            }
        }
        finally
        {
            PosixNamedSemaphore.Unlink(osName);
        }
    }

    [TestMethod]
    [DataRow(true, false, DisplayName = "marked, sync")]
    [DataRow(true, true, DisplayName = "marked, async")]
    [DataRow(false, false, DisplayName = "unmarked (full fence), sync")]
    public void Queue_sleepers_in_one_process_never_miss_a_message(bool marked, bool async)
    {
        RequireMembarrier(marked);
        var options = new ShmQueueOptions { WaitStrategy = FenceEcho.Strategy };
        string requestsName = TestNames.Unique("fence-rq"), repliesName = TestNames.Unique("fence-rp");
        using IDisposable scope = Marking(marked);
        using ShmQueue requests = ShmQueue.Create(requestsName, options);
        using ShmQueue replies = ShmQueue.Create(repliesName, options);
        Task echo = StartEcho(() => FenceEcho.ServeQueues(requests, replies, async), async);
        byte[] reply = new byte[FenceEcho.MessageLength];
        Drive(message => requests.Enqueue(message), () => replies.TryDequeue(reply, out _, ReplyDeadline) ? reply : null, echo);
    }

    [TestMethod]
    [DataRow(true, false, DisplayName = "marked, sync")]
    [DataRow(true, true, DisplayName = "marked, async")]
    [DataRow(false, false, DisplayName = "unmarked (full fence), sync")]
    public void Pipe_sleepers_in_one_process_never_miss_a_message(bool marked, bool async)
    {
        RequireMembarrier(marked);
        var options = new ShmPipeOptions { WaitStrategy = FenceEcho.Strategy };
        string name = TestNames.Unique("fence-p");
        using IDisposable scope = Marking(marked);
        using ShmConnection pipe = ShmPipe.Create(name, options);
        using ShmConnection other = ShmPipe.Connect(name, options);
        Task echo = StartEcho(() => FenceEcho.ServePipe(other, async), async);
        byte[] reply = new byte[FenceEcho.MessageLength];
        Drive(message => pipe.Send(message), () => pipe.TryReceiveInto(reply, out _, ReplyDeadline) ? reply : null, echo);
    }

    [TestMethod]
    [DataRow(true, false, false, DisplayName = "marked, child registered, sync")]
    [DataRow(true, true, false, DisplayName = "marked, child SHMIPC_FENCE=full, sync")]
    [DataRow(true, false, true, DisplayName = "marked, child registered, async")]
    public void Queue_sleepers_in_two_processes_never_miss_a_message(bool marked, bool childFull, bool async)
    {
        RequireMembarrier(marked);
        var options = new ShmQueueOptions { WaitStrategy = FenceEcho.Strategy };
        string requestsName = TestNames.Unique("fence-xrq"), repliesName = TestNames.Unique("fence-xrp");
        using IDisposable scope = Marking(marked);
        using ShmQueue requests = ShmQueue.Create(requestsName, options);
        using ShmQueue replies = ShmQueue.Create(repliesName, options);
        using ChildProcess child = StartChild(childFull, "queue", async, requestsName, repliesName);
        byte[] reply = new byte[FenceEcho.MessageLength];
        Drive(message => requests.Enqueue(message), () => replies.TryDequeue(reply, out _, ReplyDeadline) ? reply : null, null, child);
    }

    [TestMethod]
    [DataRow(true, false, false, DisplayName = "marked, child registered, sync")]
    [DataRow(true, true, true, DisplayName = "marked, child SHMIPC_FENCE=full, async")]
    [DataRow(false, true, false, DisplayName = "unmarked, child SHMIPC_FENCE=full, sync")]
    public void Pipe_sleepers_in_two_processes_never_miss_a_message(bool marked, bool childFull, bool async)
    {
        RequireMembarrier(marked);
        var options = new ShmPipeOptions { WaitStrategy = FenceEcho.Strategy };
        string name = TestNames.Unique("fence-xp");
        using IDisposable scope = Marking(marked);
        using ShmConnection pipe = ShmPipe.Create(name, options);
        using ChildProcess child = StartChild(childFull, "pipe", async, name);
        byte[] reply = new byte[FenceEcho.MessageLength];
        Drive(message => pipe.Send(message), () => pipe.TryReceiveInto(reply, out _, ReplyDeadline) ? reply : null, null, child);
    }

    private static Task StartEcho(Func<Task> serve, bool async) =>
        async ? Task.Run(serve) : Task.Factory.StartNew(() => serve().GetAwaiter().GetResult(), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static ChildProcess StartChild(bool full, string kind, bool async, params string[] names)
    {
        var environment = new Dictionary<string, string> { ["DOTNET_TieredPGO"] = "0", ["DOTNET_TC_QuickJitForLoops"] = "1" };
        if (full)
        {
            environment[SleeperFence.EnvironmentVariable] = "full";
        }

        ChildProcess child = ChildProcess.StartProgram("dotnet", ["exec", ChildProcess.HostPath, "fence-echo", kind, async ? "async" : "sync", .. names], environment);
        try
        {
            child.WaitForLine("READY", ChildProcess.ReadyTimeout);
            return child;
        }
        catch
        {
            child.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Rounds of: a random pause (none, a spin of up to ~20 µs, or a yield), a burst of 1-4 messages, then this side sleeps
    /// until the answer. Asserts every answer arrives within <see cref="ReplyDeadline"/> and names its round; then stops the echo.
    /// </summary>
    private static void Drive(Action<byte[]> send, Func<byte[]?> receiveReply, Task? echo, ChildProcess? child = null)
    {
        var random = new Random(20261207);
        long start = Stopwatch.GetTimestamp();
        int rounds = 0;
        for (; rounds < MaxRounds && (rounds < MinRounds || Stopwatch.GetElapsedTime(start) < RoundBudget); rounds++)
        {
            int pause = random.Next(3);
            if (pause == 1)
            {
                Thread.SpinWait(random.Next(1, 2_000));
            }
            else if (pause == 2)
            {
                Thread.Yield();
            }

            int count = random.Next(1, 5);
            for (int i = 0; i < count; i++)
            {
                send(FenceEcho.Message(rounds, i, count));
            }

            byte[]? reply = receiveReply();
            if (reply is null)
            {
                string why = echo is { IsFaulted: true } ? echo.Exception!.ToString() : child is not null ? child.StandardError : "";
                Assert.Fail($"round {rounds} (burst of {count}): no answer within {ReplyDeadline.TotalSeconds} s: a sleeper missed a wake-up. {why}");
            }

            Assert.AreEqual(rounds, BinaryPrimitives.ReadInt32LittleEndian(reply), "the answer names another round");
        }

        send(FenceEcho.Message(rounds, 0, 1, stop: true));
        if (echo is not null)
        {
            Assert.IsTrue(echo.Wait(TimeSpan.FromSeconds(30)), "the echo did not stop");
        }

        if (child is not null)
        {
            child.WaitForLine("DONE", TimeSpan.FromSeconds(30));
            Assert.AreEqual(0, child.WaitForExit(TimeSpan.FromSeconds(30)), child.StandardError);
        }
    }
}
