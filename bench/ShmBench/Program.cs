using ShmIpc.Bench.Children;
using ShmIpc.Bench.Demo;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Micro;

// ShmBench:
//   quick                     the README's demo (scenes + headline table), well under a minute
//   full [scenario...] [opts] every scenario (or those named) with baselines, goals, bench/results/
//   micro [filter] [bdn opts] BenchmarkDotNet micro benchmarks
//   instructions queue|pipe N N 64 B messages in one process, for bench/instructions.sh (callgrind)
//   child <role> <args>       how the harness starts its peers
string mode = args.Length > 0 ? args[0] : "quick";
if (mode == "child")
{
    return ChildRoles.Run(args[1], args[2..]);
}

Cleanup.InstallSignalHandlers();
try
{
    return mode switch
    {
        "quick" => QuickDemo.Run(),
        "full" => FullRun.Run(args[1..]),
        "micro" => MicroRunner.Run(args[1..]),
        "instructions" => InstructionCount.Run(args[1..]),
        _ => Usage(),
    };
}
catch (OperationCanceledException)
{
    return 130;
}
catch (Exception e)
{
    // Caught here (not left unhandled) so the finally below runs and nothing is left behind.
    Console.Error.WriteLine();
    Console.Error.WriteLine($"ShmBench failed: {e}");
    return 1;
}
finally
{
    Cleanup.RunAll();
}

static int Usage()
{
    Console.Error.WriteLine("usage: ShmBench quick | full [pipe|queue|pool|start|idle|interop|sync ...] [--runs N] [--scale X] [--idle-seconds S] [--no-save] | micro [filter] | instructions queue|pipe N");
    return 2;
}
