using System.Threading.Channels;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>ChannelReader/ChannelWriter over a queue and a pipe end.</summary>
[TestClass]
public sealed class ChannelAdapterTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [TestMethod]
    public async Task A_typed_queue_reads_and_writes_through_its_Reader_and_Writer_and_completes_at_shutdown()
    {
        string name = TestNames.Unique("cq");
        using var queue = ShmQueue<int>.Create(name, new ShmQueueOptions { Capacity = 4096 });
        ChannelReader<int> reader = queue.Reader;
        ChannelWriter<int> writer = queue.Writer;
        Assert.IsFalse(reader.TryRead(out _), "TryRead on an empty queue returns at once");

        ValueTask<bool> waiting = reader.WaitToReadAsync();
        Assert.IsFalse(waiting.IsCompleted, "nothing to read yet");
        Assert.IsTrue(writer.TryWrite(1));
        Assert.IsTrue(await waiting.AsTask().WaitAsync(Long));
        Assert.IsTrue(reader.TryRead(out int first));
        Assert.AreEqual(1, first);

        Task<List<int>> all = Task.Run(async () =>
        {
            var seen = new List<int>();
            await foreach (int value in reader.ReadAllAsync())
            {
                seen.Add(value);
            }

            return seen;
        });
        for (int i = 2; i <= 100; i++)
        {
            await writer.WriteAsync(i);
        }

        writer.Complete();
        CollectionAssert.AreEqual(Enumerable.Range(2, 99).ToList(), await all.WaitAsync(Long));
        await reader.Completion.WaitAsync(Long);
        Assert.IsFalse(await writer.WaitToWriteAsync());
        Assert.IsFalse(writer.TryWrite(5));
    }

    [TestMethod]
    public async Task WaitToWriteAsync_on_a_full_queue_waits_for_space()
    {
        string name = TestNames.Unique("cw");
        using var queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096, MaxMessageLength = 1024 });
        ChannelWriter<byte[]> writer = queue.AsChannelWriter();
        while (writer.TryWrite(new byte[1000]))
        {
        }

        ValueTask<bool> room = writer.WaitToWriteAsync();
        Assert.IsFalse(room.IsCompleted, "the queue is full");
        Assert.IsTrue(queue.AsChannelReader().TryRead(out _));
        Assert.IsTrue(await room.AsTask().WaitAsync(Long));
    }

    [TestMethod]
    public async Task A_pipe_end_as_typed_channels_and_completion_when_the_peer_closes()
    {
        string name = TestNames.Unique("cp");
        using ShmConnection a = ShmPipe.Create(name, AsyncModelTests.Options());
        ShmConnection b = ShmPipe.Connect(name, AsyncModelTests.Options());
        ChannelReader<string> reader = a.AsChannelReader<string>();
        ChannelWriter<string> writer = b.AsChannelWriter<string>();
        Task<List<string>> all = Task.Run(async () =>
        {
            var seen = new List<string>();
            await foreach (string value in reader.ReadAllAsync())
            {
                seen.Add(value);
            }

            return seen;
        });
        for (int i = 0; i < 50; i++)
        {
            await writer.WriteAsync($"m{i}");
        }

        Assert.IsTrue(writer.TryWrite("last"));
        Assert.IsTrue(writer.TryComplete(), "completing the writer closes the end");
        List<string> seen = await all.WaitAsync(Long);
        Assert.AreEqual(51, seen.Count);
        Assert.AreEqual("last", seen[^1]);
        await reader.Completion.WaitAsync(Long);
        Assert.IsFalse(await a.AsChannelReader().WaitToReadAsync());
        await Assert.ThrowsExactlyAsync<ChannelClosedException>(async () => await a.AsChannelReader().ReadAsync());
    }
}
