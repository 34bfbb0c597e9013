namespace ShmIpc.Nats.Tests;

/// <summary>
/// Issue 19's cluster fault: three nats-server processes routed into one JetStream cluster on loopback ports, the pool's
/// queue replicated on all three, and the server the pool is connected to SIGKILLed in the middle of a Map.
/// </summary>
[TestClass]
public sealed class NatsClusterTests : IDisposable
{
    private NatsServer[] _servers = [];
    private WorkerProcesses _workers = null!;

    [TestInitialize]
    public void Start()
    {
        _servers = NatsServer.StartCluster(3);
        _workers = new WorkerProcesses();
    }

    [TestCleanup]
    public void Stop() => Dispose();

    public void Dispose()
    {
        _workers?.Dispose();
        foreach (NatsServer server in _servers)
        {
            server.Dispose();
        }

        _servers = [];
    }

    [TestMethod]
    public void A_Map_completes_with_every_result_when_a_server_of_a_three_server_cluster_is_killed_in_the_middle()
    {
        string urls = NatsServer.Urls(_servers);
        string name = Wait.NewPoolName("cluster");

        // The constructor retries while the cluster elects its JetStream leader (503s for a few seconds after the start).
        using var pool = new NatsPool(new NatsPoolOptions
        {
            Url = urls,
            PoolName = name,
            Replicas = 3,
            HeartbeatTimeout = TimeSpan.FromSeconds(3),
            ConnectTimeout = TimeSpan.FromSeconds(30),
        });
        _workers.Start(urls, name);
        _workers.Start(urls, name);
        Wait.Until(() => pool.Workers.Count == 2, "both workers are up");
        int[] items = Enumerable.Range(0, 1000).ToArray();

        ShmAsyncResult<int[]> result = pool.MapAsync(TestFunctions.SlowSquare, items, chunkSize: 5);
        Wait.Until(() => pool.Workers.Sum(static w => w.TasksDone) >= 10, "some of the Map is done");
        NatsServer connected = _servers.Single(s => s.Port == pool.ConnectedPort);
        connected.Kill();

        CollectionAssert.AreEqual(items.Select(static x => x * x).ToArray(), result.Get(TimeSpan.FromSeconds(90)));
        Assert.AreNotEqual(connected.Port, pool.ConnectedPort, "the pool reconnected to another server of the cluster");
        Assert.AreEqual(16, pool.Apply(TestFunctions.Square, 4, TimeSpan.FromSeconds(60)), "the pool works on with two servers");
    }
}
