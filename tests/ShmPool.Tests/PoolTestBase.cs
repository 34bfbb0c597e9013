namespace ShmIpc.Pool.Tests;

/// <summary>Pools made by a test, and the check after each test that none of their processes or files is left.</summary>
public abstract class PoolTestBase
{
    private readonly List<ShmPool> _pools = new();

    /// <summary>Worker (and other child) pids the test saw; each must be gone after it.</summary>
    protected List<int> Pids { get; } = new();

    [TestCleanup]
    public void NothingLeft()
    {
        foreach (ShmPool pool in _pools)
        {
            Pids.AddRange(pool.WorkerPids);
            pool.Dispose();
        }

        TestSupport.AssertAllGone(Pids);
        TestSupport.AssertNoShmFiles();
    }

    protected ShmPool NewPool(int processes = 2, ShmPoolOptions? options = null)
    {
        var pool = new ShmPool(processes, options);
        _pools.Add(pool);
        Pids.AddRange(pool.WorkerPids);
        return pool;
    }
}
