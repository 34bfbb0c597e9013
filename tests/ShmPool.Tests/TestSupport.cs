using System.Diagnostics;
using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>Waits on conditions with deadlines, and checks that tests leave no process or segment behind.</summary>
internal static class TestSupport
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test when the deadline passes.</summary>
    public static void WaitUntil(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        if (!SpinWait.SpinUntil(condition, timeout ?? Deadline))
        {
            Assert.Fail($"Timed out waiting until {what}.");
        }
    }

    public static void AssertAllGone(IEnumerable<int> pids)
    {
        foreach (int pid in pids.Distinct())
        {
            WaitUntil(() => !ChildProcesses.IsRunning(pid), $"process {pid} has ended");
        }
    }

    /// <summary>The /dev/shm entries of this process's pools and processes.</summary>
    public static string[] OurShmFiles() =>
        Directory.GetFiles("/dev/shm", $"*shmpool-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-*");

    public static void AssertNoShmFiles() =>
        WaitUntil(() => OurShmFiles().Length == 0, "no /dev/shm file of ours is left: " + string.Join(", ", OurShmFiles()));

    /// <summary>A unique name for a shared object of a test; <see cref="AssertNoShmFiles"/> covers it.</summary>
    public static string ShmName(string what) => $"shmpool-{Environment.ProcessId}-{what}-{Guid.NewGuid():N}";

    public static string TempFile(string what) =>
        Path.Combine(Path.GetTempPath(), $"shmpool-test-{Environment.ProcessId}-{what}-{Guid.NewGuid():N}");

    public static T Timed<T>(Func<T> action, out TimeSpan elapsed)
    {
        long start = Stopwatch.GetTimestamp();
        T result = action();
        elapsed = Stopwatch.GetElapsedTime(start);
        return result;
    }
}
