using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// Another local user may be hostile: a name someone else created first is refused, and a user who may not open
/// an object is told whose it is. The second user is real: ShmTestHost runs as <c>nobody</c> through
/// <c>setpriv</c>, which needs root (CI runs as root).
/// </summary>
[TestClass]
public sealed class OwnershipTests
{
    private const int Nobody = 65534;

    private static ChildProcess StartAsNobody(params string[] args)
    {
        RequireRoot();
        var environment = new Dictionary<string, string> { ["HOME"] = "/tmp", ["DOTNET_CLI_HOME"] = "/tmp", ["DOTNET_TieredPGO"] = "0" };
        return ChildProcess.StartProgram("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "dotnet", "exec", ChildProcess.HostPath, .. args], environment);
    }

    private static void RequireRoot()
    {
        if (Environment.UserName != "root")
        {
            Assert.Inconclusive("Needs root: it runs a second, unprivileged user with setpriv and changes file owners.");
        }
    }

    private static void Chown(string path, int uid)
    {
        using Process chown = Process.Start("chown", [uid.ToString(System.Globalization.CultureInfo.InvariantCulture), path])!;
        Assert.IsTrue(chown.WaitForExit(10_000));
        Assert.AreEqual(0, chown.ExitCode, $"chown {uid} {path}");
    }

    [TestMethod]
    public void A_queue_another_user_created_first_is_refused_unless_trusted()
    {
        string name = TestNames.Unique("q-taken");
        using ChildProcess other = StartAsNobody("queue-create-world-writable", name);
        other.WaitForLine("READY", TimeSpan.FromSeconds(30));

        // As root: before, OpenOrCreate opened nobody's segment and enqueued into it.
        var e = Assert.ThrowsExactly<UnauthorizedAccessException>(() => ShmQueue.OpenOrCreate(name));
        StringAssert.Contains(e.Message, name);
        StringAssert.Contains(e.Message, "user nobody (uid 65534)");
        StringAssert.Contains(e.Message, "another user");
        Assert.ThrowsExactly<UnauthorizedAccessException>(() => ShmQueue.Open(name));
        Assert.ThrowsExactly<UnauthorizedAccessException>(() => ShmQueue.Open(name, new ShmQueueOptions { TrustedGroupId = Nobody }),
            "a trusted group does not make a world-writable object acceptable");

        using (ShmQueue trusted = ShmQueue.Open(name, new ShmQueueOptions { TrustedUserId = Nobody }))
        {
            Assert.IsTrue(trusted.TryEnqueue("named explicitly"u8));
        }

        other.CloseInput();
        Assert.AreEqual(0, other.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public void A_user_who_may_not_open_a_queue_is_told_whose_it_is()
    {
        string name = TestNames.Unique("q-private");
        using ShmQueue mine = ShmQueue.Create(name);
        using ChildProcess other = StartAsNobody("queue-try-open", name);
        string line = other.WaitForLine("DENIED", TimeSpan.FromSeconds(30));
        StringAssert.StartsWith(line, "DENIED UnauthorizedAccessException");
        StringAssert.Contains(line, $"'{name}'");
        StringAssert.Contains(line, "user root (uid 0)");
        StringAssert.Contains(line, "mode 0600");
        Assert.AreEqual(0, other.WaitForExit(TimeSpan.FromSeconds(30)));
    }

    [TestMethod]
    public void A_semaphore_or_segment_planted_under_our_name_is_refused()
    {
        RequireRoot();
        string name = TestNames.Unique("q-planted");
        using ShmQueue mine = ShmQueue.Create(name);
        string segment = $"/dev/shm/shmipc.{name}";
        string semaphore = $"/dev/shm/sem.shmipc.{name}.s1";

        Chown(semaphore, Nobody);
        var e = Assert.ThrowsExactly<UnauthorizedAccessException>(() => ShmQueue.Open(name));
        StringAssert.Contains(e.Message, "Semaphore 1");
        StringAssert.Contains(e.Message, "uid 65534");
        Chown(semaphore, 0);

        File.SetUnixFileMode(segment, (UnixFileMode)0b110_000_010);
        e = Assert.ThrowsExactly<UnauthorizedAccessException>(() => ShmQueue.Open(name));
        StringAssert.Contains(e.Message, "any local user may write it");
        File.SetUnixFileMode(segment, (UnixFileMode)0b110_000_000);

        using ShmQueue reopened = ShmQueue.Open(name);
        Assert.IsTrue(reopened.TryEnqueue("ours again"u8));
    }

    [TestMethod]
    public void A_pipe_another_user_owns_is_refused()
    {
        RequireRoot();
        string name = TestNames.Unique("p-planted");
        using ShmConnection mine = ShmPipe.Create(name);
        Chown($"/dev/shm/shmipc.{name}", Nobody);
        var e = Assert.ThrowsExactly<UnauthorizedAccessException>(() => ShmPipe.Connect(name));
        StringAssert.Contains(e.Message, "uid 65534");
        using ShmConnection trusted = ShmPipe.Connect(name, new ShmPipeOptions { TrustedUserId = Nobody });
        Assert.IsTrue(trusted.IsPeerConnected);
    }
}
