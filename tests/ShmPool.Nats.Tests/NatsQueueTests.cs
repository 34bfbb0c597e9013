namespace ShmIpc.Nats.Tests;

/// <summary>The queue over a JetStream work queue: order, acknowledged takes, redelivery, dead letters, the typed form.</summary>
[TestClass]
public sealed class NatsQueueTests
{
    private static NatsServer s_server = null!;

    [ClassInitialize]
    public static void StartServer(TestContext context) => s_server = NatsServer.Start();

    [ClassCleanup]
    public static void StopServer() => s_server?.Dispose();

    private static NatsQueueOptions Options(string name, int maxDeliveries = 5) =>
        new() { Url = s_server.Url, Name = name, MaxDeliveries = maxDeliveries };

    [TestMethod]
    public async Task Messages_come_out_once_in_order_to_any_reader_through_IShmQueue()
    {
        string name = Wait.NewPoolName("q");
        using var writer = new NatsQueue(Options(name));
        using IShmQueue reader = new NatsQueue(Options(name));
        writer.Enqueue([1], TimeSpan.FromSeconds(30));
        writer.Enqueue([2], TimeSpan.FromSeconds(30));
        await writer.EnqueueAsync(new byte[] { 3 });

        CollectionAssert.AreEqual(new byte[] { 1 }, reader.Dequeue(TimeSpan.FromSeconds(30)));
        CollectionAssert.AreEqual(new byte[] { 2 }, await reader.DequeueAsync());
        Assert.IsTrue(writer.TryDequeue(out byte[]? third, TimeSpan.FromSeconds(30)));
        CollectionAssert.AreEqual(new byte[] { 3 }, third);
        Assert.IsFalse(reader.TryDequeue(out _, TimeSpan.FromMilliseconds(300)), "each message came out once");
    }

    [TestMethod]
    public void A_nacked_take_comes_again_and_after_MaxDeliveries_goes_to_the_dead_letters()
    {
        string name = Wait.NewPoolName("dlq");
        using var queue = new NatsQueue(Options(name, maxDeliveries: 2));
        queue.Enqueue([42], TimeSpan.FromSeconds(30));

        NatsDelivery first = queue.Take(TimeSpan.FromSeconds(30));
        Assert.AreEqual(1, first.DeliveryCount);
        first.Nack();
        NatsDelivery second = queue.Take(TimeSpan.FromSeconds(30));
        Assert.AreEqual(2, second.DeliveryCount);
        CollectionAssert.AreEqual(new byte[] { 42 }, second.ToArray());
        second.Nack();

        Assert.IsFalse(queue.TryTake(out _, TimeSpan.FromSeconds(1)), "a third delivery is not given to readers");
        Assert.IsTrue(queue.TryTakeDeadLetter(out byte[]? dead, TimeSpan.FromSeconds(30)));
        CollectionAssert.AreEqual(new byte[] { 42 }, dead);
    }

    [TestMethod]
    public void An_acked_take_leaves_the_queue_and_the_typed_queue_round_trips_values()
    {
        string name = Wait.NewPoolName("typed");
        using var queue = new NatsQueue<(string Name, int Count)>(Options(name));
        queue.Enqueue(("a", 1), TimeSpan.FromSeconds(30));
        queue.Enqueue(("b", 2), TimeSpan.FromSeconds(30));

        Assert.AreEqual(("a", 1), queue.Dequeue(TimeSpan.FromSeconds(30)));
        NatsDelivery taken = queue.Queue.Take(TimeSpan.FromSeconds(30));
        taken.Ack();
        Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(300)));
    }

    [TestMethod]
    public void An_unreachable_url_fails_clearly()
    {
        string url = $"nats://127.0.0.1:{NatsServer.FreePort()}";
        var e = Assert.ThrowsExactly<IOException>(() => new NatsQueue(new NatsQueueOptions { Url = url, Name = "nowhere", ConnectTimeout = TimeSpan.FromSeconds(2) }));
        StringAssert.Contains(e.Message, url);
    }
}
