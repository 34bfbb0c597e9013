namespace ShmIpc.Nats.Tests;

/// <summary>
/// The faults both task paths must handle alike, each with real processes and its own nats-server: a worker SIGKILLed
/// mid-task, retries spent, a slow worker kept, no worker. <see cref="NatsPoolFaultTests"/> runs them on the durable
/// path, <see cref="NatsDirectTests"/> on the direct one.
/// </summary>
public abstract class NatsFaultCases : IDisposable
{
    private protected NatsServer _server = null!;
    private protected WorkerProcesses _workers = null!;

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
        GC.SuppressFinalize(this);
    }

    /// <summary>The task path under test: the durable work queue, or the direct core requests.</summary>
    protected abstract bool Durable { get; }

    protected NatsPool NewPool(string name, TimeSpan heartbeat, int retries = 2, TimeSpan? noWorker = null) => new(new NatsPoolOptions
    {
        Url = _server.Url,
        PoolName = name,
        Durable = Durable,
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

            string published = Path.Combine(directory, "pid"); // appears whole, after the claim (TestFunctions.HangFirstTime)
            int first = 0;
            Wait.Until(() => File.Exists(published) && int.TryParse(File.ReadAllText(published), System.Globalization.CultureInfo.InvariantCulture, out first)
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
}
