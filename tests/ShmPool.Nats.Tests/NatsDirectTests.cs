using NATS.Client.Core;

namespace ShmIpc.Nats.Tests;

/// <summary>
/// The direct task path (<see cref="NatsPoolOptions.Durable"/> = false) with real worker processes: results and remote
/// exceptions, a worker SIGKILLed mid-task, retries spent, a slow worker kept, no worker. Each test has its own nats-server.
/// </summary>
[TestClass]
public sealed class NatsDirectTests : IDisposable
{
    private NatsServer _server = null!;
    private WorkerProcesses _workers = null!;

    [TestInitialize]
    public void Start()
    {
        _server = NatsServer.Start();
        _workers = new WorkerProcesses();
    }

    [TestCleanup]
    public void Stop() => Dispose();

    public void Dispose()
    {
        _workers?.Dispose();
        _server?.Dispose();
    }

    private NatsPool NewPool(string name, TimeSpan heartbeat, int retries = 2, TimeSpan? noWorker = null) => new(new NatsPoolOptions
    {
        Url = _server.Url,
        PoolName = name,
        Durable = false,
        HeartbeatTimeout = heartbeat,
        TaskRetries = retries,
        NoWorkerTimeout = noWorker ?? TimeSpan.FromSeconds(30),
    });

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

    [TestMethod]
    public void A_worker_killed_mid_task_has_its_task_sent_to_another_and_the_caller_gets_the_result()
    {
        string name = Wait.NewPoolName("dkilled");
        string directory = Directory.CreateTempSubdirectory("shmipc-nats-dkilled-").FullName;
        try
        {
            using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(2));
            _workers.Start(_server.Url, name);
            _workers.Start(_server.Url, name);
            Wait.Until(() => pool.Workers.Count == 2, "both workers are up");
            ShmAsyncResult<int> result = pool.ApplyAsync(TestFunctions.HangFirstTime, directory);

            string claim = Path.Combine(directory, "claimed");
            int first = 0;
            Wait.Until(() => File.Exists(claim) && int.TryParse(File.ReadAllText(claim), System.Globalization.CultureInfo.InvariantCulture, out first)
                && _workers.Started.Any(w => w.Pid == first), "a worker has taken the task and written its whole pid");
            ShmProcess victim = _workers.Started.Single(w => w.Pid == first);
            victim.Kill();
            Assert.IsTrue(victim.Join(TimeSpan.FromSeconds(20)));
            Assert.AreEqual(-9, victim.ExitCode, "the worker died of SIGKILL");

            int second = result.Get(TimeSpan.FromSeconds(60));

            Assert.AreNotEqual(first, second, "the other worker ran the task");
            Assert.IsTrue(_workers.Started.Any(w => w.Pid == second));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [TestMethod]
    public void When_every_worker_given_the_task_dies_the_caller_gets_ShmWorkerCrashedException()
    {
        string name = Wait.NewPoolName("dretries");
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(1), retries: 1);
        _workers.Start(_server.Url, name);
        _workers.Start(_server.Url, name);
        Wait.Until(() => pool.Workers.Count == 2, "both workers are up");

        ShmAsyncResult<int> result = pool.ApplyAsync(TestFunctions.KillMyWorker, 0);

        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => result.Get(TimeSpan.FromSeconds(60)));
        StringAssert.Contains(e.Message, name);
        StringAssert.Contains(e.Message, "given to 2 workers");
        Wait.Until(() => _workers.Started.All(static w => !w.IsAlive), "both workers that took the task are dead");
    }

    [TestMethod]
    public void A_slow_live_worker_keeps_its_task_past_several_heartbeat_lapses()
    {
        string name = Wait.NewPoolName("dslow");
        string file = Path.Combine(Path.GetTempPath(), $"shmipc-nats-dslow-{Guid.NewGuid():N}");
        try
        {
            using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(1));
            _workers.Start(_server.Url, name);
            _workers.Start(_server.Url, name);

            int ranIn = pool.Apply(TestFunctions.SlowOnce, (file, 4000), TimeSpan.FromSeconds(60));

            string[] runs = File.ReadAllLines(file);
            Assert.HasCount(1, runs, "the task ran once, 4 heartbeat lapses long, and no other worker was given it");
            Assert.AreEqual(ranIn.ToString(System.Globalization.CultureInfo.InvariantCulture), runs[0]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [TestMethod]
    public void With_no_worker_a_task_times_out_naming_the_pool_and_the_server()
    {
        string name = Wait.NewPoolName("dalone");
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(2), noWorker: TimeSpan.FromSeconds(1));

        var e = Assert.ThrowsExactly<TimeoutException>(() => pool.Apply(TestFunctions.Square, 3, TimeSpan.FromSeconds(60)));

        StringAssert.Contains(e.Message, $"'{name}'");
        StringAssert.Contains(e.Message, _server.Url);
        StringAssert.Contains(e.Message, "NatsWorker.Run");
    }
}
