namespace ShmIpc.Nats.Tests;

/// <summary>The pool calls through NATS with real worker processes: results, order, errors, the shared interface.</summary>
[TestClass]
public sealed class NatsPoolTests
{
    private static NatsServer s_server = null!;

    [ClassInitialize]
    public static void StartServer(TestContext context) => s_server = NatsServer.Start();

    [ClassCleanup]
    public static void StopServer() => s_server?.Dispose();

    private static NatsPool NewPool(string name, int localWorkers = 0) => new(new NatsPoolOptions
    {
        Url = s_server.Url,
        PoolName = name,
        LocalWorkers = localWorkers,
        HeartbeatTimeout = TimeSpan.FromSeconds(2),
    });

    [TestMethod]
    public void Apply_Map_Starmap_and_Imap_run_in_two_worker_processes()
    {
        string name = Wait.NewPoolName("calls");
        using var workers = new WorkerProcesses();
        using NatsPool pool = NewPool(name);
        workers.Start(s_server.Url, name);
        workers.Start(s_server.Url, name);

        Assert.AreEqual(49, pool.Apply(TestFunctions.Square, 7, TimeSpan.FromSeconds(60)));
        int[] items = Enumerable.Range(0, 1000).ToArray();
        CollectionAssert.AreEqual(items.Select(static x => x * x).ToArray(), pool.Map(TestFunctions.Square, items, chunkSize: 37));
        CollectionAssert.AreEqual(items.Select(static x => x * x).ToArray(), pool.Map(TestFunctions.Square, items));
        CollectionAssert.AreEqual(new[] { 3, 7, 11 }, pool.Starmap(TestFunctions.Add, new[] { (1, 2), (3, 4), (5, 6) }));
        CollectionAssert.AreEqual(items[..50].Select(static x => x * x).ToArray(), pool.Imap(TestFunctions.Square, items[..50]).ToArray());
        CollectionAssert.AreEquivalent(items[..50].Select(static x => x * x).ToArray(), pool.ImapUnordered(TestFunctions.Square, items[..50], 7).ToArray());

        Wait.Until(() => pool.Workers.Count == 2, "both workers are listed");
        CollectionAssert.AreEquivalent(workers.Started.Select(static w => w.Pid).ToArray(), pool.Workers.Select(static w => w.Pid).ToArray());
        Assert.IsTrue(pool.Workers.All(static w => w.Host == Environment.MachineName));
        int[] ran = pool.Map(TestFunctions.WhoAmI, Enumerable.Range(0, 200), chunkSize: 1);
        Assert.IsTrue(ran.All(pid => workers.Started.Any(w => w.Pid == pid)), "every item ran in one of the workers");
    }

    [TestMethod]
    public async Task Async_forms_complete_and_an_exception_comes_back_as_ShmRemoteException()
    {
        string name = Wait.NewPoolName("async");
        using var workers = new WorkerProcesses();
        await using NatsPool pool = NewPool(name);
        workers.Start(s_server.Url, name);

        Assert.AreEqual(16, await pool.ApplyAsync(TestFunctions.Square, 4));
        CollectionAssert.AreEqual(new[] { 0, 1, 4 }, await pool.MapAsync(TestFunctions.Square, [0, 1, 2]));
        var streamed = new List<int>();
        await foreach (int r in pool.ImapAsync(TestFunctions.Square, [3, 4, 5]))
        {
            streamed.Add(r);
        }

        CollectionAssert.AreEqual(new[] { 9, 16, 25 }, streamed);

        ShmRemoteException e = Assert.ThrowsExactly<ShmRemoteException>(() => pool.Apply(TestFunctions.Throws, 5));
        Assert.AreEqual(typeof(InvalidOperationException).FullName, e.RemoteType);
        Assert.AreEqual("no good: 5", e.RemoteMessage);
        ShmRemoteException inMap = Assert.ThrowsExactly<ShmRemoteException>(() => pool.Map(TestFunctions.Throws, [1, 2, 3]));
        Assert.AreEqual("no good: 1", inMap.RemoteMessage, "Map reports the first failed item in input order");
    }

    [TestMethod]
    public void The_same_code_runs_on_ShmPool_and_NatsPool_through_IShmPool()
    {
        string name = Wait.NewPoolName("iface");
        using var workers = new WorkerProcesses();
        workers.Start(s_server.Url, name);
        using var local = new ShmPool(1);
        using NatsPool remote = NewPool(name);
        foreach (IShmPool pool in new IShmPool[] { local, remote })
        {
            Assert.AreEqual(36, pool.Apply(TestFunctions.Square, 6), pool.GetType().Name);
            CollectionAssert.AreEqual(new[] { 1, 4, 9 }, pool.Map(TestFunctions.Square, [1, 2, 3]), pool.GetType().Name);
        }
    }

    [TestMethod]
    public void Local_workers_serve_the_pool_and_end_with_it()
    {
        string name = Wait.NewPoolName("local");
        int[] pids;
        using (NatsPool pool = NewPool(name, localWorkers: 2))
        {
            Wait.Until(() => pool.Workers.Count == 2, "the two local workers are listed");
            pids = pool.Workers.Select(static w => w.Pid).ToArray();
            CollectionAssert.AreEqual(new[] { 4, 9 }, pool.Map(TestFunctions.Square, [2, 3]));
        }

        foreach (int pid in pids)
        {
            Wait.Until(() => !IsRunning(pid), $"local worker {pid} has ended with its pool");
        }
    }

    [TestMethod]
    public void A_Map_larger_than_the_server_max_payload_goes_in_several_messages()
    {
        string name = Wait.NewPoolName("large");
        using var workers = new WorkerProcesses();
        using NatsPool pool = NewPool(name);
        workers.Start(s_server.Url, name);
        string[] items = Enumerable.Range(0, 3000).Select(static i => new string((char)('a' + (i % 26)), 1000)).ToArray();

        string[] echoed = pool.Map(TestFunctions.Echo, items, chunkSize: items.Length);

        CollectionAssert.AreEqual(items, echoed, "3 MB in one requested chunk crossed a server whose max payload is 1 MB");
    }

    internal static bool IsRunning(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
