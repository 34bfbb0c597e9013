namespace ShmIpc.Nats.Tests;

/// <summary>
/// Real worker processes for a test: each is a child of the test host (a <see cref="ShmProcess"/>) that runs
/// <see cref="NatsWorker.Run"/> and so connects to the server over TCP as a worker on another host would.
/// <see cref="Dispose"/> SIGKILLs every one still running.
/// </summary>
internal sealed class WorkerProcesses : IDisposable
{
    private readonly List<ShmProcess> _started = [];

    public IReadOnlyList<ShmProcess> Started => _started;

    public ShmProcess Start(string url, string poolName)
    {
        ShmProcess worker = ShmProcess.Start(static (string[] a) => NatsWorker.Run(a[0], a[1]), [url, poolName],
            new ShmProcessOptions { Name = $"nats-worker-{poolName}" });
        _started.Add(worker);
        return worker;
    }

    public void Dispose()
    {
        foreach (ShmProcess worker in _started)
        {
            if (worker.IsAlive)
            {
                worker.Kill();
            }

            Assert.IsTrue(worker.Join(TimeSpan.FromSeconds(20)), $"worker {worker.Pid} did not end after SIGKILL");
            worker.Dispose();
        }

        _started.Clear();
    }
}

internal static class Wait
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test when the deadline passes.</summary>
    public static void Until(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        if (!SpinWait.SpinUntil(() => { Thread.Sleep(20); return condition(); }, timeout ?? Deadline))
        {
            Assert.Fail($"Timed out waiting until {what}.");
        }
    }

    public static string NewPoolName(string what) => $"{what}-{Guid.NewGuid():N}"[..Math.Min(40, what.Length + 33)];
}
