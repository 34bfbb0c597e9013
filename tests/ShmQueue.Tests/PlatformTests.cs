using System.Text;
using ShmIpc.Memory;

namespace ShmIpc.Tests;

[TestClass]
public sealed class PlatformTests
{
    private const string Tail = " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 123456789 19 20";

    [TestMethod]
    [DataRow("42 (dotnet) S" + Tail, 123456789UL, DisplayName = "plain")]
    [DataRow("42 (a b) c) S" + Tail, 123456789UL, DisplayName = "comm with a space and a parenthesis")]
    [DataRow("42 (zed) Z" + Tail, null, DisplayName = "zombie")]
    [DataRow("42 (x) X" + Tail, null, DisplayName = "dead")]
    [DataRow("42 (short) S 1 2", null, DisplayName = "truncated")]
    [DataRow("garbage", null, DisplayName = "no parenthesis")]
    public void Start_time_is_field_22_counted_after_the_last_parenthesis(string stat, ulong? expected) =>
        Assert.AreEqual(expected, LinuxSharedMemoryPlatform.ParseStartTime(Encoding.ASCII.GetBytes(stat)));

    [TestMethod]
    public void This_process_is_alive_and_a_made_up_identity_is_not()
    {
        ISharedMemoryPlatform platform = SharedMemoryPlatform.Current;
        ProcessIdentity me = platform.CurrentProcess;
        Assert.IsTrue(platform.IsAlive(me));
        Assert.IsFalse(platform.IsAlive(me with { StartTime = me.StartTime + 1 }), "same pid, other start time: another process");
        Assert.IsFalse(platform.IsAlive(new ProcessIdentity(int.MaxValue / 64, 1)));
    }

    [TestMethod]
    public void A_liveness_check_allocates_nothing()
    {
        ISharedMemoryPlatform platform = SharedMemoryPlatform.Current;
        ProcessIdentity me = platform.CurrentProcess;
        var gone = new ProcessIdentity(int.MaxValue / 64, 1);
        platform.IsAlive(me);
        platform.IsAlive(gone);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            Assert.IsTrue(platform.IsAlive(me));
            Assert.IsFalse(platform.IsAlive(gone));
        }

        // Waiters check their peers every few milliseconds: a path string and a file handle per check was the only
        // allocation of a steady-state wait (and of the async round trip's figure).
        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before, "bytes allocated by 200 liveness checks");
    }
}
