using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;
using ShmIpc.Memory;

namespace ShmIpc.Bench.Demo;

/// <summary>
/// "quick", the README's first command: the Python multiprocessing tutorial's classic scenes done with
/// ShmIpc between real processes, then a compact table of headline figures beside a .NET Unix domain
/// socket measured in the same run. Well under a minute; cleans up everything, also on Ctrl+C.
/// </summary>
internal static class QuickDemo
{
    /// <summary>A scene of the demo. Replace a pending scene's body when its structure lands.</summary>
    private sealed record Scene(string Title, Action<HarnessContext> Run);

    /// <summary>A row of the final table: ShmIpc figure beside the UDS figure; a missing ShmIpc figure shows its stand-in.</summary>
    private sealed record Row(string Label, string ShmIpcFigure, string? StandIn, string BaselineFigure);

    private static readonly Scene[] s_scenes =
    [
        new("Processes: start three workers, join them, collect their results", StartJoinCollect),
        new("Queue: three producer processes fill it, the parent drains it", Pending("Queue")),         // TODO(queue)
        new("Pipe: echo between two processes", PipeStandIn),                                         // TODO(pipe)
        new("Pool: Map, Imap, ApplyAsync(...).Get(timeout)", Pending("Pool")),                        // TODO(pool)
        new(".NET Unix domain socket, the same figures for comparison", UdsBaselines),
    ];

    private static readonly Row[] s_rows =
    [
        new("Pipe 8 B round trip", "shmipc.pipe_8B_rtt_median", "shmipc.semaphore_8B_rtt_median", "dotnet.uds_8B_rtt_median"),
        new("Queue 64 B throughput", "shmipc.queue_64B_1p1c_throughput", null, "dotnet.uds_64B_stream_throughput"),
        new("Pool apply round trip", "shmipc.pool2_apply_rtt_median", null, "dotnet.uds_8B_rtt_median"),
    ];

    public static int Run()
    {
        var options = new HarnessOptions(Quick: true, Scale: 1, Runs: 1, IdleWindow: TimeSpan.FromSeconds(2), Save: false);
        var ctx = new HarnessContext(options, new Progress()) { Scenario = "quick" };
        Console.WriteLine($"ShmIpc quick demo on {Environment.ProcessorCount} cores, .NET {Environment.Version}, parent pid {Environment.ProcessId}");
        for (int i = 0; i < s_scenes.Length; i++)
        {
            ctx.Progress.Stage(i + 1, s_scenes.Length, "quick");
            ctx.Progress.Line("");
            ctx.Progress.Line($"{i + 1}. {s_scenes[i].Title}");
            ctx.Progress.Step(s_scenes[i].Title);
            s_scenes[i].Run(ctx);
        }

        ctx.Progress.Done();
        PrintTable(ctx);
        Console.WriteLine();
        foreach (Figure f in ctx.Figures().Where(f => f.Name.EndsWith("_median", StringComparison.Ordinal) || f.Unit != "ns"))
        {
            Console.WriteLine(f.ToLine());
        }

        Console.WriteLine($"done in {ctx.Progress.Elapsed.TotalSeconds:0.0} s; all figures and goals: dotnet run -c Release --project bench/ShmBench -- full");
        return 0;
    }

    private static Action<HarnessContext> Pending(string structure) =>
        ctx => ctx.Progress.Line($"   (pending: the {structure} is being written; this scene runs when it lands)");

    /// <summary>Scene 1: three children sum squares over a third of a range each and return the sums through a shared segment.</summary>
    private static unsafe void StartJoinCollect(HarnessContext ctx)
    {
        // TODO(pool): use the ShmIpc process API (start, pid, join, exit code) when it lands.
        const int Workers = 3;
        const long N = 2_000_000;
        string name = Foundation.NewSegmentName("demo");
        using ShmSegment segment = Foundation.CreateRaw(name, 0);
        try
        {
            var children = new Process[Workers];
            for (int w = 0; w < Workers; w++)
            {
                long from = N * w / Workers, to = N * (w + 1) / Workers;
                children[w] = ChildProcesses.Start("square-sum", null, name, Str(w), Str(from), Str(to));
                ctx.Progress.Line($"   started worker {w} as pid {children[w].Id}");
            }

            long total = 0;
            for (int w = 0; w < Workers; w++)
            {
                string? said = children[w].StandardOutput.ReadLine();
                int code = ChildProcesses.Join(children[w], TimeSpan.FromSeconds(30));
                long result = Volatile.Read(ref ((long*)segment.Control)[w]);
                total += result;
                ctx.Progress.Line($"   joined pid {children[w].Id}, exit code {code}: returned {result} ({said})");
                children[w].Dispose();
            }

            long expected = 0;
            for (long i = 0; i < N; i++)
            {
                expected += i * i;
            }

            ctx.Progress.Line($"   sum of squares below {N}: {total} from the workers, {(total == expected ? "matches" : "DIFFERS FROM")} the parent's own {expected}");
        }
        finally
        {
            segment.Unlink();
        }
    }

    private static void PipeStandIn(HarnessContext ctx)
    {
        ctx.Progress.Line("   (pending: the Pipe is being written; meanwhile a ping-pong on ShmIpc named semaphores, what a sleeping Pipe waits on)");
        Foundation.SemaphorePingPong(ctx, ctx.Plan(20_000));
        ReportLatency(ctx, "shmipc.semaphore_8B_rtt");
    }

    private static void UdsBaselines(HarnessContext ctx)
    {
        DotnetBaselines.UdsPingPong(ctx);
        ReportLatency(ctx, "dotnet.uds_8B_rtt");
        DotnetBaselines.UdsStreamPerMessage(ctx);
        double? rate = ctx.ValueOf("dotnet.uds_64B_stream_throughput");
        ctx.Progress.Line($"   dotnet.uds_64B_stream_throughput: {(rate is double r ? Figure.Humanize(r, "msg/s") : "-")} (one Send per message)");
    }

    private static void ReportLatency(HarnessContext ctx, string name)
    {
        string Get(string suffix) => ctx.ValueOf(name + suffix) is double v ? LatencyStats.Fmt(v) : "-";
        ctx.Progress.Line($"   {name}: p50 {Get("_median")}  p90 {Get("_p90")}  p99 {Get("_p99")}  p99.9 {Get("_p999")}  max {Get("_max")}");
    }

    private static void PrintTable(HarnessContext ctx)
    {
        Console.WriteLine();
        Console.WriteLine($"{"headline",-24} {"ShmIpc",-34} {".NET UDS",-18} {"ShmIpc advantage",16}");
        foreach (Row row in s_rows)
        {
            double? mine = ctx.ValueOf(row.ShmIpcFigure);
            string? shown = mine is null ? null : row.ShmIpcFigure;
            if (mine is null && row.StandIn is not null && ctx.ValueOf(row.StandIn) is double standIn)
            {
                mine = standIn;
                shown = row.StandIn;
            }

            double? theirs = ctx.ValueOf(row.BaselineFigure);
            string unit = Catalog.Spec(row.BaselineFigure)?.Unit ?? "";
            string mineText = mine is double m
                ? Figure.Humanize(m, unit) + (shown == row.ShmIpcFigure ? "" : " (semaphores)")
                : "pending";
            string theirsText = theirs is double t ? Figure.Humanize(t, unit) : "-";
            string ratio = mine is double a && theirs is double b && a > 0 && b > 0
                ? string.Create(CultureInfo.InvariantCulture, $"{(unit == "ns" ? b / a : a / b):0.00}x")
                : "-";
            Console.WriteLine($"{row.Label,-24} {mineText,-34} {theirsText,-18} {ratio,16}");
        }
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
