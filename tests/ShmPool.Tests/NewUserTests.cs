namespace ShmIpc.Pool.Tests;

/// <summary>What a new user and Python's own multiprocessing tests found (issue 12), each pinned by a test.</summary>
[TestClass]
public sealed class NewUserTests : PoolTestBase
{
    private static IEnumerable<int> ThrowsAtThree()
    {
        for (int i = 0; ; i++)
        {
            if (i == 3)
            {
                throw new InvalidOperationException("input item 3 is bad");
            }

            yield return i;
        }
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(10)]
    public void Imap_yields_the_results_before_a_failing_input_then_throws(int chunkSize)
    {
        // Python: imap over an input that raises at item 3 yields f(0), f(1), f(2), then raises.
        ShmPool pool = NewPool();
        var seen = new List<int>();
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
        {
            foreach (int r in pool.Imap(TestFunctions.Square, ThrowsAtThree(), chunkSize))
            {
                seen.Add(r);
            }
        });
        Assert.AreEqual("input item 3 is bad", e.Message);
        CollectionAssert.AreEqual(new[] { 0, 1, 4 }, seen);

        seen.Clear();
        Assert.ThrowsExactly<InvalidOperationException>(() =>
        {
            foreach (int r in pool.ImapUnordered(TestFunctions.Square, ThrowsAtThree(), chunkSize))
            {
                seen.Add(r);
            }
        });
        CollectionAssert.AreEquivalent(new[] { 0, 1, 4 }, seen);
    }

    [TestMethod]
    public async Task ImapAsync_yields_the_results_before_a_failing_input_then_throws()
    {
        ShmPool pool = NewPool();
        var seen = new List<int>();
        await Assert.ThrowsExactlyAsync<InvalidOperationException>(async () =>
        {
            await foreach (int r in pool.ImapAsync(TestFunctions.Square, ThrowsAtThree(), chunkSize: 2))
            {
                seen.Add(r);
            }
        });
        CollectionAssert.AreEqual(new[] { 0, 1, 4 }, seen);
    }

    [TestMethod]
    public void A_crashing_child_flushes_its_standard_error_first()
    {
        string path = TestSupport.TempFile("stderr");
        try
        {
            using var child = ShmProcess.Start(TestFunctions.BufferedErrorThenThrow, path);
            Pids.Add(child.Pid);
            Assert.ThrowsExactly<ShmRemoteException>(() => child.GetResult(TestSupport.Deadline));
            Assert.IsTrue(child.Join(TestSupport.Deadline));
            Assert.AreEqual(1, child.ExitCode);
            string text = File.ReadAllText(path);
            StringAssert.Contains(text, "written before the crash");
            StringAssert.Contains(text, "the target failed", "the child's traceback goes to its standard error, as in Python");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void A_terminated_child_flushes_its_standard_output_first()
    {
        string path = TestSupport.TempFile("stdout");
        try
        {
            using var child = ShmProcess.Start(TestFunctions.BufferedOutThenWait, path);
            Pids.Add(child.Pid);
            TestSupport.WaitUntil(() => File.Exists(path + ".ready"), "the child has written");
            child.Terminate();
            Assert.IsTrue(child.Join(TestSupport.Deadline));
            Assert.AreEqual(-15, child.ExitCode);
            Assert.AreEqual("written before SIGTERM", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
            File.Delete(path + ".ready");
        }
    }
}
