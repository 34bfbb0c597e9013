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
        DotnetBaselines.ConsoleStart(ctx);
        PythonBaselines.PoolStart(ctx);
    }

    /// <summary>new ShmPool(2) to the first Apply result: shmipc.pool2_start_to_first_result (ms). The pool's disposal is not timed.</summary>
    public static void PoolStart(HarnessContext ctx)
    {
        ctx.Progress.Step("ShmIpc Pool(2) start to first result");
        for (int r = -1; r < ctx.Options.Runs; r++)
        {
            ctx.Progress.Detail(r < 0 ? "warm-up" : $"run {r + 1}/{ctx.Options.Runs}");
            long start = Stopwatch.GetTimestamp();
            using ShmPool pool = Cleanup.Own(new ShmPool(2));
            _ = pool.Apply(PoolTargets.Identity, 1);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (r >= 0)
            {
                ctx.Record("shmipc.pool2_start_to_first_result", "ms", ms);
            }
        }
    }
}
