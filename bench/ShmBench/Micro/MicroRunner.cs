using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// "micro [filter] [BenchmarkDotNet options]": the BenchmarkDotNet micro benchmarks of this assembly.
/// They run in process (InProcessEmitToolchain): no second build of this project, which matters on a
/// two-core machine shared with other builds. "micro Notify" runs benchmarks whose name contains Notify.
/// </summary>
internal static class MicroRunner
{
    public static int Run(string[] args)
    {
        var forwarded = new List<string>();
        if (args.Length == 0 || args[0].StartsWith('-'))
        {
            forwarded.AddRange(["--filter", "*"]);
        }
        else
        {
            forwarded.AddRange(["--filter", $"*{args[0]}*"]);
            args = args[1..];
        }

        forwarded.AddRange(args);
        IConfig config = DefaultConfig.Instance
            .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance))
            .WithArtifactsPath(Path.Combine(Path.GetTempPath(), $"shmbench-bdn-{Environment.ProcessId}"));
        BenchmarkSwitcher.FromAssembly(typeof(MicroRunner).Assembly).Run(forwarded.ToArray(), config);
        return 0;
    }
}
