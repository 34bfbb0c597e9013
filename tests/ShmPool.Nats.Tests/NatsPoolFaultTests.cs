namespace ShmIpc.Nats.Tests;

/// <summary>
/// The faults of issue 19, each with real processes: a worker SIGKILLed mid-task, retries spent, a slow worker, no
/// worker, a server restarted mid-Map, a bad URL, a wrong pool name, a result that does not deserialize.
/// Each test has its own nats-server.
/// </summary>
[TestClass]
public sealed class NatsPoolFaultTests : NatsFaultCases
{
    protected override bool Durable => true;

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
