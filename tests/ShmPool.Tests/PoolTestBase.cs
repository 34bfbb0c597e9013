using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// Pools and processes made by a test, and the check after each test that none of their processes or files is left
/// (a process still running then is SIGKILLed, so the next test starts clean, and the test fails).
/// </summary>
public abstract class PoolTestBase
{
    private readonly List<ShmPool> _pools = new();

    /// <summary>Worker (and other child) processes the test saw; each must be gone after it.</summary>
    internal ChildProcesses Children { get; } = new();

    [TestCleanup]
    public void NothingLeft()
    {
        foreach (ShmPool pool in _pools)
        {
            Children.Track(pool.WorkerPids);
            pool.Dispose();
        }

        int[] running = Children.WaitUntilAllEnded(TestSupport.Deadline);
        Children.Dispose();
        Assert.AreEqual(0, running.Length, $"processes still running after the test: {string.Join(", ", running)}");
        TestSupport.AssertNoShmFiles();
    }

    protected ShmPool NewPool(int processes = 2, ShmPoolOptions? options = null)
    {
        var pool = new ShmPool(processes, options);
        _pools.Add(pool);
        Children.Track(pool.WorkerPids);
        return pool;
    }

    /// <summary>Owns <paramref name="process"/>'s pid: it must end with the test.</summary>
    protected T Track<T>(T process)
        where T : ShmProcess
    {
        Children.Track(process.Pid);
        return process;
    }
}
