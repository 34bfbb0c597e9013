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
        // TODO(pool): shmipc.pool2_start_to_first_result (ctx.Record, "ms"): new Pool(2), first Apply result.
        DotnetBaselines.ConsoleStart(ctx);
        PythonBaselines.PoolStart(ctx);
    }
}
