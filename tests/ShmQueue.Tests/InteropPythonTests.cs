using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// The Python peer (native-notes/python/shmipc.py: standard library only, CAS through libatomic or x86-64
/// thunks) against the .NET library. Inconclusive only without python3.
/// </summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropPythonTests : ChildProcessTests
{
    private static string? s_python;

    protected override int SettleGapMicros => 400;

    protected override int Count => 4_000;

    [ClassInitialize]
    public static void FindPython(TestContext context)
    {
        (int ExitCode, string Output)? version = Run("python3", "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import shmipc; print(sys.version.split()[0], shmipc.atomics_source())",
            Path.Combine(NativeNotes, "python"));
        if (version is null)
        {
            return;
        }

        Assert.AreEqual(0, version.Value.ExitCode, $"the Python peer does not import:\n{version.Value.Output}");
        s_python = "python3";
        context.WriteLine($"python {version.Value.Output.Trim()}");
    }

    private protected override ChildProcess Peer(params string[] args)
    {
        if (s_python is null)
        {
            Assert.Inconclusive("Python interop skipped: no python3 on PATH");
        }

        return ChildProcess.StartProgram(s_python!, [Path.Combine(NativeNotes, "python", "shmipc_tool.py"), .. args]);
    }
}
