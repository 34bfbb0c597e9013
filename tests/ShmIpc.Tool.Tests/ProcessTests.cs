using System.Text.Json;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tool.Tests;

/// <summary>The real shmipc assembly, as an installed tool runs it: a process of its own.</summary>
[TestClass]
public sealed class ProcessTests
{
    [TestMethod]
    public void The_shmipc_assembly_run_with_dotnet_exec_inspects_a_queue_another_process_made()
    {
        string name = TestNames.Unique("pexec");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096 });
        queue.Enqueue([1, 2, 3, 4]);

        (int code, string output, string error) = RunShmipc("inspect", name, "--json");
        Assert.AreEqual(0, code, error);
        using JsonDocument report = JsonDocument.Parse(output);
        JsonElement q = report.RootElement.GetProperty("queue");
        Assert.AreEqual(1, q.GetProperty("depth").GetInt64());
        Assert.AreEqual(4096, q.GetProperty("capacity").GetInt64());
        Assert.AreEqual(Environment.ProcessId, report.RootElement.GetProperty("object").GetProperty("creator").GetProperty("pid").GetInt32());

        (code, output, _) = RunShmipc("--help");
        Assert.AreEqual(0, code);
        foreach (string command in new[] { "list", "inspect", "doctor", "clean" })
        {
            StringAssert.Contains(output, command);
        }
    }

    private static (int Code, string Output, string Error) RunShmipc(params string[] args)
    {
        string tool = Path.Combine(AppContext.BaseDirectory, "shmipc.dll");
        Assert.IsTrue(File.Exists(tool), $"{tool} is copied beside the tests by the project reference");
        return ChildProcess.Run("dotnet", ["exec", tool, .. args], TimeSpan.FromSeconds(60));
    }
}
