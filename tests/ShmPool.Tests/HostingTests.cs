using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>ShmPool used from a console app (ShmTestHost), and children dying with their parent.</summary>
[TestClass]
public sealed class HostingTests
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    [TestMethod]
    public void A_console_app_maps_a_static_method_of_its_own_assembly()
    {
        using ChildProcess app = ChildProcess.Start("pool-console", "1000");
        int[] pids = ParsePids(app.WaitForLine("PIDS", Deadline));
        string sum = app.WaitForLine("SUM", Deadline);
        long expected = Enumerable.Range(1, 1000).Sum(x => (long)x * x * x);
        Assert.AreEqual($"SUM {expected}", sum);
        Assert.AreEqual(0, app.WaitForExit(Deadline), app.StandardError);
        TestSupport.AssertAllGone(pids);
    }

    [TestMethod]
    public void Workers_and_processes_die_with_their_parent_and_its_segments_are_removed()
    {
        using ChildProcess parent = ChildProcess.Start("pool-orphan");
        int[] pids = ParsePids(parent.WaitForLine("PIDS", Deadline));
        Assert.AreEqual(3, pids.Length);
        string prefix = $"shmpool-{parent.Pid.ToString(CultureInfo.InvariantCulture)}-";
        Assert.IsTrue(Directory.GetFiles("/dev/shm", $"*{prefix}*").Length > 0);
        foreach (int pid in pids)
        {
            Assert.IsTrue(ChildProcesses.IsRunning(pid));
        }

        parent.Kill9();
        TestSupport.AssertAllGone(pids);
        TestSupport.WaitUntil(() => Directory.GetFiles("/dev/shm", $"*{prefix}*").Length == 0,
            "the dead parent's segments are removed: " + string.Join(", ", Directory.GetFiles("/dev/shm", $"*{prefix}*")));
    }

    private static int[] ParsePids(string line) =>
        line["PIDS ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
}
