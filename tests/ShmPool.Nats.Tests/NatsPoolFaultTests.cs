namespace ShmIpc.Nats.Tests;

/// <summary>
/// The faults of issue 19, each with real processes: a worker SIGKILLed mid-task, retries spent, a slow worker, no
/// worker, a server restarted mid-Map, a bad URL, a wrong pool name, a result that does not deserialize.
/// Each test has its own nats-server.
/// </summary>
[TestClass]
public sealed class NatsPoolFaultTests : IDisposable
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
        HeartbeatTimeout = heartbeat,
        TaskRetries = retries,
        NoWorkerTimeout = noWorker ?? TimeSpan.FromSeconds(30),
    });

    [TestMethod]
    public void A_worker_killed_mid_task_has_its_task_run_by_another_and_the_caller_gets_the_result()
    {
        string name = Wait.NewPoolName("killed");
        string directory = Directory.CreateTempSubdirectory("shmipc-nats-killed-").FullName;
        try
        {
            using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(2));
            _workers.Start(_server.Url, name);
            _workers.Start(_server.Url, name);
            ShmAsyncResult<int> result = pool.ApplyAsync(TestFunctions.HangFirstTime, directory);

            string claim = Path.Combine(directory, "claimed");
            Wait.Until(() => File.Exists(claim) && File.ReadAllText(claim).Length > 0, "a worker has taken the task");
            int first = int.Parse(File.ReadAllText(claim), System.Globalization.CultureInfo.InvariantCulture);
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
        string name = Wait.NewPoolName("retries");
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(1), retries: 1);
        _workers.Start(_server.Url, name);
        _workers.Start(_server.Url, name);

        ShmAsyncResult<int> result = pool.ApplyAsync(TestFunctions.KillMyWorker, 0);

        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => result.Get(TimeSpan.FromSeconds(60)));
        StringAssert.Contains(e.Message, name);
        StringAssert.Contains(e.Message, "given to 2 workers");
        Wait.Until(() => _workers.Started.All(static w => !w.IsAlive), "both workers that took the task are dead");
    }

    [TestMethod]
    public void A_slow_live_worker_keeps_its_task_past_several_heartbeat_lapses()
    {
        string name = Wait.NewPoolName("slow");
        string file = Path.Combine(Path.GetTempPath(), $"shmipc-nats-slow-{Guid.NewGuid():N}");
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
        string name = Wait.NewPoolName("alone");
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(2), noWorker: TimeSpan.FromSeconds(1));

        var e = Assert.ThrowsExactly<TimeoutException>(() => pool.Apply(TestFunctions.Square, 3, TimeSpan.FromSeconds(60)));

        StringAssert.Contains(e.Message, $"'{name}'");
        StringAssert.Contains(e.Message, _server.Url);
        StringAssert.Contains(e.Message, "NatsWorker.Run");
    }

    [TestMethod]
    public void A_worker_of_another_pool_name_does_not_serve_the_pool_which_times_out_clearly()
    {
        string name = Wait.NewPoolName("right");
        string other = Wait.NewPoolName("wrong");
        using NatsPool otherPool = NewPool(other, TimeSpan.FromSeconds(2));
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(2), noWorker: TimeSpan.FromSeconds(1));
        _workers.Start(_server.Url, other);
        Wait.Until(() => otherPool.Workers.Count == 1, "the worker of the other pool is up");

        var e = Assert.ThrowsExactly<TimeoutException>(() => pool.Apply(TestFunctions.Square, 3, TimeSpan.FromSeconds(60)));

        StringAssert.Contains(e.Message, $"'{name}'");
        Assert.IsEmpty(pool.Workers);
        Assert.AreEqual(9, otherPool.Apply(TestFunctions.Square, 3, TimeSpan.FromSeconds(60)), "the other pool's worker serves its own pool");
    }

    [TestMethod]
    public void An_unreachable_url_fails_the_constructor_clearly_and_starts_nothing()
    {
        string url = $"nats://127.0.0.1:{NatsServer.FreePort()}";
        int childrenBefore = ShmProcess.ActiveChildren().Count;

        var e = Assert.ThrowsExactly<IOException>(() => new NatsPool(new NatsPoolOptions
        {
            Url = url,
            PoolName = "nowhere",
            LocalWorkers = 2,
            ConnectTimeout = TimeSpan.FromSeconds(2),
        }));

        StringAssert.Contains(e.Message, url);
        StringAssert.Contains(e.Message, "'nowhere'");
        Assert.AreEqual(childrenBefore, ShmProcess.ActiveChildren().Count, "no local worker was started");
        Assert.ThrowsExactly<IOException>(() => NatsWorker.Run(url, "nowhere"));
    }

    [TestMethod]
    public void A_result_that_does_not_deserialize_fails_that_call_clearly_and_the_pool_goes_on()
    {
        string name = Wait.NewPoolName("picky");
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(2));
        _workers.Start(_server.Url, name);

        var e = Assert.ThrowsExactly<InvalidDataException>(() => pool.Apply(TestFunctions.MakePicky, -1, TimeSpan.FromSeconds(60)));

        StringAssert.Contains(e.Message, typeof(Picky).FullName!);
        StringAssert.Contains(e.Message, $"'{name}'");
        Assert.AreEqual(5, pool.Apply(TestFunctions.MakePicky, 5, TimeSpan.FromSeconds(60)).Value);
    }

    [TestMethod]
    public void A_Map_completes_when_the_server_restarts_in_the_middle()
    {
        string name = Wait.NewPoolName("restart");
        using NatsPool pool = NewPool(name, TimeSpan.FromSeconds(3));
        _workers.Start(_server.Url, name);
        _workers.Start(_server.Url, name);
        Wait.Until(() => pool.Workers.Count == 2, "both workers are up");
        int[] items = Enumerable.Repeat(40, 60).ToArray();

        ShmAsyncResult<int[]> result = pool.MapAsync(TestFunctions.SleepMs, items, chunkSize: 1);
        Wait.Until(() => pool.Workers.Sum(static w => w.TasksDone) >= 4, "some of the Map is done");
        _server.Restart();

        CollectionAssert.AreEqual(items, result.Get(TimeSpan.FromSeconds(90)));
        Assert.IsTrue(_workers.Started.All(static w => w.IsAlive), "the workers live through the restart: " + string.Join(", ", _workers.Started.Select(static w => w.ExitCode)));
        Wait.Until(() => pool.Workers.Count == 2, "both workers are seen again after the restart");
        Assert.AreEqual(16, pool.Apply(TestFunctions.Square, 4, TimeSpan.FromSeconds(60)), "the pool works on after the restart");
    }
}
