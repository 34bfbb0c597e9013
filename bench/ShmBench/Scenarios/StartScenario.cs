using System.Diagnostics;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>start: process start-up cost. Baselines: a bare .NET console process, Python Pool(2) with spawn and fork.</summary>
internal sealed class StartScenario : IScenario
{
    public string Name => "start";

    public string Title => "Start: process and pool start to first result";

    public void Run(HarnessContext ctx)
    {
        PoolStart(ctx);
        PythonBaselines.PoolStartFork(ctx);
        ManyWorkers(ctx);
    }

    /// <summary>
    /// Many workers (issue 16): a single worker's start (new ShmPool(1) to WaitForWorkers), Pool(16) start to its first
    /// result, Pool(64) start to every worker ready (and that over 64 single starts shared by the cores), the resident
    /// memory of an idle worker against a bare .NET console process, and Pool(200) mapping 1,000 items in a child process
    /// whose standard error (which the workers inherit) is counted.
    /// </summary>
    public static void ManyWorkers(HarnessContext ctx)
    {
        ctx.Progress.Step("ShmIpc single worker start, Pool(16) first result, Pool(64) all ready");
        var single = new List<double>();
        for (int r = -1; r < ctx.Options.Runs; r++)
        {
            ctx.Progress.Detail(r < 0 ? "warm-up" : $"run {r + 1}/{ctx.Options.Runs}");
            long start = Stopwatch.GetTimestamp();
            using ShmPool pool = Cleanup.Own(new ShmPool(1));
            pool.WaitForWorkers(Timeout.InfiniteTimeSpan);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (r >= 0)
            {
                single.Add(ms);
                ctx.Record("shmipc.worker_start_ms", "ms", ms);
            }
        }

        for (int r = 0; r < ctx.Options.Runs; r++)
        {
            ctx.Progress.Detail($"Pool(16) run {r + 1}/{ctx.Options.Runs}");
            long start = Stopwatch.GetTimestamp();
            using ShmPool pool = Cleanup.Own(new ShmPool(16));
            _ = pool.Apply(PoolTargets.Identity, 1);
            ctx.Record("shmipc.pool16_start_to_first_result", "ms", Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            pool.WaitForWorkers(Timeout.InfiniteTimeSpan); // not timed: the next run starts on quiet cores
        }

        // Each Pool(64) run is seconds long: three runs are enough for a median.
        double singleMedian = single.Order().ElementAt(single.Count / 2);
        int runs64 = Math.Min(3, ctx.Options.Runs);
        for (int r = 0; r < runs64; r++)
        {
            ctx.Progress.Detail($"Pool(64) run {r + 1}/{runs64}");
            long start = Stopwatch.GetTimestamp();
            using ShmPool pool = Cleanup.Own(new ShmPool(64));
            pool.WaitForWorkers(Timeout.InfiniteTimeSpan);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            ctx.Record("shmipc.pool64_start_to_all_ready", "ms", ms);
            ctx.Record("shmipc.pool64_start_per_linear", "ratio", ms / (64 * singleMedian / Environment.ProcessorCount));
        }

        ctx.Progress.Step("Resident memory: an idle worker against a bare .NET console process");
        using (ShmPool pool = Cleanup.Own(new ShmPool(4)))
        {
            pool.WaitForWorkers(Timeout.InfiniteTimeSpan);
            _ = pool.Map(PoolTargets.Identity, Enumerable.Range(0, 1000), chunkSize: 1); // each has run tasks: a worker as users see it
            Thread.Sleep(500);
            ctx.Record("shmipc.worker_rss_mb", "MB", pool.WorkerPids.Average(ResidentMb));
        }

        using (Process console = ChildProcesses.Start("hello-wait", null))
        {
            ChildProcesses.Expect(console, "hello");
            Thread.Sleep(500);
            ctx.Record("dotnet.console_rss_mb", "MB", ResidentMb(console.Id));
            console.StandardInput.Close();
            _ = ChildProcesses.Join(console, TimeSpan.FromSeconds(30));
        }

        ctx.Progress.Step("ShmIpc Pool(200) maps 1,000 items (in a child process; its standard error counted)");
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        string[] args = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? [typeof(StartScenario).Assembly.Location, "child", "pool-many", "200", "1000"]
            : ["child", "pool-many", "200", "1000"];
        using Process child = ChildProcesses.StartTool(self, args);
        Task<string> error = child.StandardError.ReadToEndAsync();
        ChildProcesses.Expect(child, "READY");
        string? line = child.StandardOutput.ReadLine();
        int exit = ChildProcesses.Join(child, TimeSpan.FromMinutes(5));
        string stderr = error.GetAwaiter().GetResult();
        if (exit != 0 || line is null || !line.StartsWith("MANY ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The Pool(200) child failed (exit {exit}, '{line}'): {stderr}");
        }

        ctx.Record("shmipc.pool200_map_1000_ms", "ms", double.Parse(line["MANY ".Length..], System.Globalization.CultureInfo.InvariantCulture));
        ctx.Record("shmipc.pool200_stderr_bytes", "bytes", stderr.Length);
        if (stderr.Length > 0)
        {
            ctx.Progress.Line($"  note: Pool(200) wrote to standard error: {stderr[..Math.Min(400, stderr.Length)]}");
        }
    }

    /// <summary>The child's side of the Pool(200) figure: prints READY, then "MANY &lt;ms&gt;" from new ShmPool to the Map's checked result.</summary>
    public static int PoolManyChild(int workers, int items)
    {
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        int[] input = Enumerable.Range(0, items).ToArray();
        long start = Stopwatch.GetTimestamp();
        using var pool = new ShmPool(workers);
        int[] results = pool.Map(PoolTargets.Identity, input, chunkSize: 1);
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (!results.SequenceEqual(input))
        {
            throw new InvalidOperationException("Pool(200) mapped the items wrong.");
        }

        Console.Out.WriteLine("MANY " + ms.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
        Console.Out.Flush();
        return 0;
    }

    /// <summary>VmRSS of process <paramref name="pid"/> (from /proc/PID/status), in MB.</summary>
    private static double ResidentMb(int pid) =>
        double.Parse(File.ReadLines($"/proc/{pid}/status").First(static l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024;

    /// <summary>
    /// new ShmPool(2) to the first Apply result (shmipc.pool2_start_to_first_result, ms; the pool's disposal is not timed),
    /// each run back to back with its baselines: a bare .NET console start (dotnet.console_start_to_first_message) just
    /// before, and Python's spawn Pool(2) start (py.pool2_spawn_start_to_first_result, one measured start after one warm-up
    /// start in a fresh interpreter) just after. The goals use the per-run ratios (pair.pool2_start_per_console_start,
    /// pair.pool2_start_per_py_spawn_start): the three figures move together as the shared machine's load moves, and
    /// medians taken minutes apart compared states instead of starts (the ratio to the console start read 2.0 and 3.1 on
    /// two runs of one build).
    /// </summary>
    public static void PoolStart(HarnessContext ctx)
    {
        ctx.Progress.Step("ShmIpc Pool(2) start to first result, each run beside a .NET console start and a Python spawn Pool(2) start");
        for (int r = -1; r < ctx.Options.Runs; r++)
        {
            ctx.Progress.Detail(r < 0 ? "warm-up" : $"run {r + 1}/{ctx.Options.Runs}");
            double console = DotnetBaselines.ConsoleStartOnce();
            long start = Stopwatch.GetTimestamp();
            using (ShmPool pool = Cleanup.Own(new ShmPool(2)))
            {
                _ = pool.Apply(PoolTargets.Identity, 1);
                double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (r < 0)
                {
                    continue;
                }

                ctx.Record("dotnet.console_start_to_first_message", "ms", console);
                ctx.Record("shmipc.pool2_start_to_first_result", "ms", ms);
                ctx.Record("pair.pool2_start_per_console_start", "ratio", ms / console);
            }

            if (PythonBaselines.PoolStartSpawnOnce(ctx) && ctx.LastOf("py.pool2_spawn_start_to_first_result") is double python && python > 0)
            {
                ctx.Record("pair.pool2_start_per_py_spawn_start", "ratio", ctx.LastOf("shmipc.pool2_start_to_first_result")!.Value / python);
            }
        }
    }
}
