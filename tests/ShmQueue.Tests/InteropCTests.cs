using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// The C peer (native-notes/c, written from native-notes/LAYOUT.md alone) against the .NET library. The tool is
/// compiled once per run into a temporary directory, removed at the end. Inconclusive only without a C compiler.
/// </summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropCTests : ChildProcessTests
{
    private static string? s_dir;
    private static string? s_tool;
    private static string? s_problem;

    protected override int SettleGapMicros => 200;

    protected override int Count => 20_000;

    [ClassInitialize]
    public static void CompileTool(TestContext context)
    {
        if (Run("cc", "--version") is null)
        {
            s_problem = "no C compiler (cc) on PATH";
            return;
        }

        s_dir = Directory.CreateTempSubdirectory("shmipc-interop-c-").FullName;
        s_tool = Path.Combine(s_dir, "shmipc_tool");
        string c = Path.Combine(NativeNotes, "c");
        (int code, string output) = Run("cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-pthread", "-o", s_tool,
            Path.Combine(c, "shmipc.c"), Path.Combine(c, "shmipc_tool.c"))!.Value;
        if (code != 0)
        {
            Assert.Fail($"cc failed to build the C peer:\n{output}");
        }

        if (output.Contains("warning", StringComparison.Ordinal))
        {
            context.WriteLine($"cc warnings (the C peer must build warning-free):\n{output}");
        }
    }

    [ClassCleanup]
    public static void RemoveTool()
    {
        if (s_dir is not null)
        {
            Directory.Delete(s_dir, recursive: true);
        }
    }

    private protected override ChildProcess Peer(params string[] args)
    {
        if (s_tool is null)
        {
            Assert.Inconclusive($"C interop skipped: {s_problem}");
        }

        return ChildProcess.StartProgram(s_tool!, args);
    }
}
