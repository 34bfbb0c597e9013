using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// "micro [filter] [BenchmarkDotNet options]": the BenchmarkDotNet micro benchmarks of this assembly.
/// They run in process (BenchmarkDotNet's --inProcess): no second build of this project, which matters on a
/// two-core machine shared with other builds ("--outOfProcess" restores BenchmarkDotNet's default).
/// "micro Notify" runs benchmarks whose name contains Notify; the report is printed, its files go to a
/// temp directory that is removed at exit.
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

        // In process by default, also for jobs chosen on the command line ("--job short").
        if (!forwarded.Remove("--outOfProcess"))
        {
            forwarded.Add("--inProcess");
        }

        string artifacts = Harness.Cleanup.Path(Path.Combine(Path.GetTempPath(), $"shmbench-bdn-{Environment.ProcessId}"));
        IConfig config = DefaultConfig.Instance.WithArtifactsPath(artifacts);
        BenchmarkSwitcher.FromAssembly(typeof(MicroRunner).Assembly).Run(forwarded.ToArray(), config);
        return 0;
    }
}
