using NATS.Client.Core;

namespace ShmIpc.Nats.Tests;

/// <summary>
/// The direct task path (<see cref="NatsPoolOptions.Durable"/> = false) with real worker processes: results and remote
/// exceptions here; the faults (a worker SIGKILLed mid-task, retries spent, a slow worker kept, no worker) in <see cref="NatsFaultCases"/>.
/// </summary>
[TestClass]
public sealed class NatsDirectTests : NatsFaultCases
{
    protected override bool Durable => false;

    [TestMethod]
    public async Task Apply_ApplyAsync_Map_and_a_remote_exception_go_as_core_requests()
    {
        string name = Wait.NewPoolName("direct");
        await using var watcher = new NatsConnection(new NatsOpts { Url = _server.Url });
        int seen = 0;
        using var stopWatching = new CancellationTokenSource();
        Task watching = Task.Run(async () =>
        {
            // Not in the workers' queue group: sees every direct task, and takes none away from the workers.
            await foreach (NatsMsg<byte[]> _ in watcher.SubscribeAsync<byte[]>($"shmpool.{name}.q", cancellationToken: stopWatching.Token))
            {
                Interlocked.Increment(ref seen);
            }
        });
        await watcher.PingAsync();
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(2));
        _workers.Start(_server.Url, name);
        _workers.Start(_server.Url, name);

        Assert.AreEqual(49, pool.Apply(TestFunctions.Square, 7, TimeSpan.FromSeconds(60)));
        Assert.AreEqual(16, await pool.ApplyAsync(TestFunctions.Square, 4).AsTask().WaitAsync(TimeSpan.FromSeconds(60)));
        int[] items = Enumerable.Range(0, 300).ToArray();
        CollectionAssert.AreEqual(items.Select(static x => x * x).ToArray(), pool.Map(TestFunctions.Square, items, chunkSize: 7));
        CollectionAssert.AreEqual(items[..40].Select(static x => x * x).ToArray(), pool.Imap(TestFunctions.Square, items[..40]).ToArray());
        ShmRemoteException e = Assert.ThrowsExactly<ShmRemoteException>(() => pool.Apply(TestFunctions.Throws, 5, TimeSpan.FromSeconds(60)));
        Assert.AreEqual(typeof(InvalidOperationException).FullName, e.RemoteType);
        Assert.AreEqual("no good: 5", e.RemoteMessage);

        Wait.Until(() => Volatile.Read(ref seen) >= 3, "the watcher saw the tasks on the direct subject");
        await stopWatching.CancelAsync();
        await watching.ContinueWith(static _ => { }, TaskScheduler.Default).WaitAsync(TimeSpan.FromSeconds(30)); // ends, or throws: either way it stopped
    }
}
