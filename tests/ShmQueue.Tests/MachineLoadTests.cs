using System.Diagnostics;
using System.Text;
using ShmIpc.Signaling;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>The oversubscription test that shortens spins (MachineLoad) reads the runnable count right and sees load come.</summary>
[TestClass]
public sealed class MachineLoadTests
{
    [TestMethod]
    [DataRow("0.52 0.58 0.59 3/154 23301\n", 3)]
    [DataRow("12.00 8.10 4.00 17/1020 99\n", 17)]
    [DataRow("0.00 0.00 0.00 1/1 1", 1)]
    [DataRow("garbage", 0)]
    [DataRow("/12", 0)]
    public void The_runnable_count_is_read_from_the_fourth_field(string line, int expected) =>
        Assert.AreEqual(expected, MachineLoad.ParseRunnable(Encoding.ASCII.GetBytes(line)));

    [TestMethod]
    public void Busy_threads_beyond_the_cores_make_waits_spin_briefly()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("/proc/loadavg is Linux's");
        }

        TimeSpan configured = TimeSpan.FromMicroseconds(50);
        using var stop = new CancellationTokenSource();
        var spinners = Enumerable.Range(0, (2 * Environment.ProcessorCount) + 1)
            .Select(_ => new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Thread.SpinWait(100);
                }
            }) { IsBackground = true })
            .ToList();
        spinners.ForEach(t => t.Start());
        try
        {
            Until.True(
                () => MachineLoad.SpinBudget(configured, Stopwatch.GetTimestamp()) == MachineLoad.OversubscribedSpin,
                TimeSpan.FromSeconds(30),
                "with more busy threads than cores the spin budget drops to the oversubscribed one");
        }
        finally
        {
            stop.Cancel();
            spinners.ForEach(t => t.Join());
        }

        Assert.AreEqual(TimeSpan.Zero, MachineLoad.SpinBudget(TimeSpan.Zero, Stopwatch.GetTimestamp()), "a wait that never spins still never spins");
    }
}
