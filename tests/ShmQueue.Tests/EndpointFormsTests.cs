using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// The blocking forms every endpoint offers alike: <c>X()</c>, <c>X(TimeSpan)</c> throwing <see cref="TimeoutException"/>
/// that names the object, <c>X(CancellationToken)</c>, and <c>TryX(..., TimeSpan)</c> returning false on timeout.
/// </summary>
[TestClass]
public sealed class EndpointFormsTests
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(30);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    private static ShmPipeOptions PipeOptions(int capacity = 4096) => new()
    {
        Capacity = capacity,
        WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(20) },
    };

    /// <summary>A pipe's two ends; disposing removes its names, which the test checks.</summary>
    private sealed class Ends : IDisposable
    {
        public Ends(int capacity = 4096)
        {
            Name = TestNames.Unique("forms");
            A = ShmPipe.Create(Name, PipeOptions(capacity));
            B = ShmPipe.Connect(Name, PipeOptions(capacity));
        }

        public string Name { get; }

        public ShmConnection A { get; }

        public ShmConnection B { get; }

        public void Dispose()
        {
            B.Dispose();
            A.Dispose();
            Assert.AreEqual(0, TestNames.ShmFilesOf(Name).Length, "the pipe's names are removed from /dev/shm");
        }
    }

    private static ShmQueue NewQueue(long capacity = 4096) =>
        ShmQueue.Create(TestNames.Unique("formsq"), new ShmQueueOptions { Capacity = capacity, MaxMessageLength = 64 });

    /// <summary>Fills the pipe from <paramref name="sender"/>: 512-byte messages, then empty ones until not even those fit. Returns the count.</summary>
    private static int Fill(ShmConnection sender)
    {
        int sent = 0;
        foreach (byte[] chunk in new[] { new byte[512], [] })
        {
            while (sender.TrySend(chunk, TimeSpan.Zero))
            {
                sent++;
            }
        }

        return sent;
    }

    // ---- pipe -----------------------------------------------------------------------------------

    [TestMethod]
    public void Pipe_Receive_with_timeout_returns_the_message_or_throws_TimeoutException_naming_the_pipe()
    {
        using var ends = new Ends();
        ends.A.Send([1, 2, 3]);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, ends.B.Receive(Generous));

        var e = Assert.ThrowsExactly<TimeoutException>(() => ends.B.Receive(Short));
        StringAssert.Contains(e.Message, ends.Name, "the exception names the pipe");
        StringAssert.Contains(e.Message, "empty");
    }

    [TestMethod]
    public void Pipe_ReceiveInto_with_timeout_and_with_token()
    {
        using var ends = new Ends();
        byte[] buffer = new byte[16];
        ends.A.Send([7, 8]);
        Assert.AreEqual(2, ends.B.ReceiveInto(buffer, Generous));
        CollectionAssert.AreEqual(new byte[] { 7, 8 }, buffer[..2]);

        Assert.ThrowsExactly<TimeoutException>(() => ends.B.ReceiveInto(buffer, Short));
        Assert.IsFalse(ends.B.TryReceiveInto(buffer, out int length, Short));
        Assert.AreEqual(0, length);

        ends.A.Send([9]);
        using var cts = new CancellationTokenSource(Generous);
        Assert.AreEqual(1, ends.B.ReceiveInto(buffer, cts.Token));
        Assert.AreEqual(9, buffer[0]);
    }

    [TestMethod]
    public void Pipe_ReceiveInto_cancelled_while_waiting_throws_OperationCanceledException()
    {
        using var ends = new Ends();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        byte[] buffer = new byte[16];
        Assert.Throws<OperationCanceledException>(() => ends.B.ReceiveInto(buffer, cts.Token));

        ends.A.Send([5]);
        Assert.AreEqual(1, ends.B.ReceiveInto(buffer, Generous), "the end works on after the cancelled call");
    }

    [TestMethod]
    public void Pipe_Send_with_timeout_throws_TimeoutException_on_a_full_pipe_and_sends_nothing()
    {
        using var ends = new Ends(capacity: 4096);
        int sent = Fill(ends.A);
        var e = Assert.ThrowsExactly<TimeoutException>(() => ends.A.Send(new byte[512], Short));
        StringAssert.Contains(e.Message, ends.Name);
        StringAssert.Contains(e.Message, "full");
        Assert.IsFalse(ends.A.TrySend(new byte[512], Short), "TrySend: false on timeout");

        int received = 0;
        while (ends.B.TryReceive(out _, TimeSpan.Zero))
        {
            received++;
        }

        Assert.AreEqual(sent, received, "only the messages that fitted went through; the timed-out sends wrote nothing");
        ends.A.Send(new byte[512], Generous);
        Assert.AreEqual(512, ends.B.Receive(Generous).Length);
    }

    [TestMethod]
    public void Pipe_Send_cancelled_while_the_pipe_is_full_throws_OperationCanceledException()
    {
        using var ends = new Ends();
        Fill(ends.A);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        Assert.Throws<OperationCanceledException>(() => ends.A.Send(new byte[512], cts.Token));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => ends.A.Send(42, cancelled.Token));
    }

    [TestMethod]
    public void Pipe_typed_forms_match_the_byte_forms()
    {
        using var ends = new Ends();
        ends.A.Send(41, Generous);
        Assert.IsTrue(ends.A.TrySend("forty-two", Generous));
        ends.A.Send(43L, CancellationToken.None);

        Assert.AreEqual(41, ends.B.Receive<int>(Generous));
        Assert.IsTrue(ends.B.TryReceive(out string? text, Generous));
        Assert.AreEqual("forty-two", text);
        using var cts = new CancellationTokenSource(Generous);
        Assert.AreEqual(43L, ends.B.Receive<long>(cts.Token));

        Assert.IsFalse(ends.B.TryReceive(out int _, Short));
        var e = Assert.ThrowsExactly<TimeoutException>(() => ends.B.Receive<int>(Short));
        StringAssert.Contains(e.Message, ends.Name);
    }

    [TestMethod]
    public void Pipe_byte_array_overloads_send_the_bytes_themselves_not_a_serialized_array()
    {
        using var ends = new Ends();
        using var cts = new CancellationTokenSource(Generous);
        ends.A.Send(new byte[] { 1, 2 }, Generous);
        ends.A.Send(new byte[] { 3 }, cts.Token);
        Assert.IsTrue(ends.A.TrySend(new byte[] { 4, 5, 6 }, Generous));

        CollectionAssert.AreEqual(new byte[] { 1, 2 }, ends.B.Receive(Generous));
        CollectionAssert.AreEqual(new byte[] { 3 }, ends.B.Receive(Generous));
        CollectionAssert.AreEqual(new byte[] { 4, 5, 6 }, ends.B.Receive(Generous));
    }

    [TestMethod]
    public void Pipe_typed_receive_without_a_serializer_for_the_type_throws_ArgumentException_and_consumes_nothing()
    {
        using var ends = new Ends();
        ends.A.Send([1]);
        Assert.ThrowsExactly<ArgumentException>(() => ends.B.Receive<List<int>>(Generous));
        CollectionAssert.AreEqual(new byte[] { 1 }, ends.B.Receive(Generous), "the message is still there");
    }

    // ---- queue ----------------------------------------------------------------------------------

    [TestMethod]
    public void Queue_span_forms_false_or_TimeoutException_on_timeout()
    {
        using ShmQueue queue = NewQueue();
        byte[] buffer = new byte[64];

        Assert.IsFalse(queue.TryDequeue(buffer, out int none, Short));
        Assert.AreEqual(0, none);
        var e = Assert.ThrowsExactly<TimeoutException>(() => queue.Dequeue(buffer, Short));
        StringAssert.Contains(e.Message, queue.Name);

        queue.Enqueue([1, 2, 3]);
        Assert.IsTrue(queue.TryDequeue(buffer, out int length, Generous));
        Assert.AreEqual(3, length);

        queue.Enqueue([4]);
        Assert.AreEqual(1, queue.Dequeue(buffer, Generous));
        queue.Enqueue([5, 6]);
        Assert.AreEqual(2, queue.Dequeue(buffer));
        queue.Enqueue([7]);
        using var cts = new CancellationTokenSource(Generous);
        Assert.AreEqual(1, queue.Dequeue(buffer, cts.Token));
        Assert.AreEqual(7, buffer[0]);
    }

    [TestMethod]
    public void Queue_span_Dequeue_cancelled_while_waiting_throws_OperationCanceledException()
    {
        using ShmQueue queue = NewQueue();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        byte[] buffer = new byte[64];
        Assert.Throws<OperationCanceledException>(() => queue.Dequeue(buffer, cts.Token));
    }

#pragma warning disable CS0618 // the replaced member keeps its old answer
    [TestMethod]
    public void Queue_obsolete_span_Dequeue_with_token_still_returns_minus_one_on_timeout()
    {
        using ShmQueue queue = NewQueue();
        byte[] buffer = new byte[64];
        Assert.AreEqual(-1, queue.Dequeue(buffer, Short, CancellationToken.None));
    }
#pragma warning restore CS0618

    [TestMethod]
    public void Typed_queue_Enqueue_with_timeout_throws_TimeoutException_when_full()
    {
        using ShmQueue<long> queue = new(NewQueue());
        while (queue.TryEnqueue(1L))
        {
        }

        var e = Assert.ThrowsExactly<TimeoutException>(() => queue.Enqueue(2L, Short));
        StringAssert.Contains(e.Message, queue.Name);
        Assert.IsFalse(queue.TryEnqueue(2L, Short));

        Assert.AreEqual(1L, queue.Dequeue(Generous));
        queue.Enqueue(3L, Generous);
    }
}
