using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// interop: C and Python peers (native-notes/c, native-notes/python, written from native-notes/LAYOUT.md) on
/// ShmIpc segments created by this .NET process, beside the same measurement with a .NET peer and Python's
/// own multiprocessing.Pipe, all in one run.
/// <list type="bullet">
/// <item>shmipc.interop_{c,py,dotnet}_pipe_8B_rtt: this process sends 8 B on a Pipe and waits for the peer's echo
/// (both sides spin first: this thread on CPU 0, the peer on CPU 1).</item>
/// <item>shmipc.interop_{c,py,dotnet}_queue_64B_throughput: the peer enqueues 64 B messages, this process dequeues them.</item>
/// </list>
/// The C tool is compiled at run time into the gitignored bench/native/bin/ (skipped without a compiler).
/// </summary>
internal sealed class InteropScenario : IScenario
{
    private static readonly Lazy<string?> s_cTool = new(CompileC);
    private static readonly Lazy<bool> s_python = new(() => MachineInfo.Run("python3", null, "--version") is not null);
    private static string? s_cProblem;

    public string Name => "interop";

    public string Title => "Interop: C and Python peers on ShmIpc segments";

    private static string PythonTool => Path.Combine(RepoPaths.Root, "native-notes", "python", "shmipc_tool.py");

    public void Run(HarnessContext ctx)
    {
        RunPlan rtt = ctx.Plan(20_000);
        RunPlan stream = ctx.Plan(1_000_000, 10_000);
        RunPlan pyStream = ctx.Plan(100_000, 10_000);

        PipeRoundTrip(ctx, "dotnet", rtt, null);
        QueueThroughput(ctx, "dotnet", stream, null);
        if (s_cTool.Value is string c)
        {
            PipeRoundTrip(ctx, "c", rtt, (c, []));
            QueueThroughput(ctx, "c", stream, (c, []));
        }
        else
        {
            ctx.Note($"interop C figures skipped: {s_cProblem}");
        }

        if (s_python.Value)
        {
            PipeRoundTrip(ctx, "py", rtt, ("python3", [PythonTool]));
            QueueThroughput(ctx, "py", pyStream, ("python3", [PythonTool]));
            PythonBaselines.PipeRoundTrip(ctx);
            GoalNote(ctx, "Python peer's Pipe rtt beats multiprocessing.Pipe", "py.pipe_8B_rtt_median", "shmipc.interop_py_pipe_8B_rtt_median");
        }
        else
        {
            ctx.Note("interop Python figures skipped: no python3");
        }

        ctx.Note("interop pipe rtt: this process pinned to CPU 0, the echo peer (C, Python or .NET) to CPU 1; both spin 50 us before sleeping");
        ctx.Note("interop queue throughput: the peer enqueues, this process dequeues; a ring of 1 MiB");
    }

    /// <summary>Starts the peer: a tool (C, Python) with SHMBENCH_CPU, or this program's interop role.</summary>
    private static Process StartPeer((string Program, string[] Prefix)? tool, string role, params string[] args)
    {
        if (tool is not (string program, string[] prefix))
        {
            return ChildProcesses.Start(role, cpu: 1, args);
        }

        // Through env(1), so the tool gets SHMBENCH_CPU and the harness still tracks it for cleanup.
        string[] argv = [.. (Affinity.CanSeparate ? new[] { Affinity.ChildCpuVariable + "=1" } : []), program, .. prefix, role["interop-".Length..], .. args];
        return ChildProcesses.StartTool("env", argv);
    }

    private static void PipeRoundTrip(HarnessContext ctx, string peer, RunPlan plan, (string, string[])? tool)
    {
        ctx.Progress.Step($"interop pipe rtt, {peer} peer");
        string name = Foundation.NewSegmentName($"interop-pipe-{peer}");
        Process? child = null;
        try
        {
            using ShmConnection end = ShmPipe.Create(name);
            child = StartPeer(tool, "interop-pipe-echo", name);
            ChildProcesses.Expect(child, "READY");
            byte[] message = new byte[8];
            byte[] reply = new byte[8];
            using (Affinity.PinCurrentThread(0))
            {
                ctx.Latency($"shmipc.interop_{peer}_pipe_8B_rtt", plan, n =>
                {
                    long[] ticks = new long[n];
                    for (int i = 0; i < n; i++)
                    {
                        BitConverter.TryWriteBytes(message, i);
                        long start = Stopwatch.GetTimestamp();
                        end.Send(message);
                        end.ReceiveInto(reply);
                        ticks[i] = Stopwatch.GetTimestamp() - start;
                    }

                    return ticks;
                });
            }

            end.Dispose();
            ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
        }
        finally
        {
            Stop(child);
        }
    }

    private static void QueueThroughput(HarnessContext ctx, string peer, RunPlan plan, (string, string[])? tool)
    {
        ctx.Progress.Step($"interop queue throughput, {peer} peer");
        string name = Foundation.NewSegmentName($"interop-queue-{peer}");
        Process? child = null;
        try
        {
            using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 20 });
            child = StartPeer(tool, "interop-queue-blast", name, plan.Total.ToString(CultureInfo.InvariantCulture), "64");
            ChildProcesses.Expect(child, "READY");
            byte[] buffer = new byte[64];
            using (Affinity.PinCurrentThread(0))
            {
                ctx.Rate($"shmipc.interop_{peer}_queue_64B_throughput", "msg/s", plan, n =>
                {
                    long start = Stopwatch.GetTimestamp();
                    for (int i = 0; i < n; i++)
                    {
                        if (queue.Dequeue(buffer, TimeSpan.FromSeconds(30)) != 64)
                        {
                            throw new InvalidOperationException($"The {peer} producer stopped ({i} of {n} messages).");
                        }
                    }

                    return Stopwatch.GetTimestamp() - start;
                }, bytesPerItem: 64);
            }

            ChildProcesses.Join(child, TimeSpan.FromSeconds(60));
        }
        finally
        {
            Stop(child);
        }
    }

    private static void Stop(Process? child)
    {
        if (child is null)
        {
            return;
        }

        if (!child.HasExited)
        {
            child.Kill(entireProcessTree: true);
            child.WaitForExit(5_000);
        }

        child.Dispose();
    }

    /// <summary>A goal of this issue, evaluated here: ratio = baseline / ours, met when above 1.</summary>
    private static void GoalNote(HarnessContext ctx, string text, string baseline, string ours)
    {
        double? b = ctx.ValueOf(baseline), o = ctx.ValueOf(ours);
        ctx.Note(b is double bv && o is double ov && ov > 0
            ? string.Create(CultureInfo.InvariantCulture, $"goal (interop) {text}: {baseline} / {ours} = {bv / ov:0.00} ({(bv / ov > 1 ? "met" : "NOT met")})")
            : $"goal (interop) {text}: not measured");
    }

    private static string? CompileC()
    {
        string source = Path.Combine(RepoPaths.Root, "native-notes", "c");
        string dir = Path.Combine(RepoPaths.Native, "bin");
        string binary = Path.Combine(dir, "shmipc_tool");
        string[] inputs = [Path.Combine(source, "shmipc.c"), Path.Combine(source, "shmipc_tool.c"), Path.Combine(source, "shmipc.h")];
        if (File.Exists(binary) && inputs.All(i => File.GetLastWriteTimeUtc(binary) >= File.GetLastWriteTimeUtc(i)))
        {
            return binary;
        }

        Directory.CreateDirectory(dir);
        string? output = MachineInfo.Run("cc", null, "-std=c11", "-O2", "-Wall", "-Wextra", "-pthread", "-o", binary, inputs[0], inputs[1]);
        if (output is null || !File.Exists(binary))
        {
            s_cProblem = "no working C compiler ('cc' failed or is missing)";
            return null;
        }

        return binary;
    }
}
