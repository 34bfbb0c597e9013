using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Baselines;

/// <summary>
/// Runs an external baseline program (C, Python) and records what it prints, one line per measured run:
/// <c>latency NAME p50 p90 p99 p99.9 max</c> (ns), <c>value NAME VALUE UNIT</c>, or <c># note</c>.
/// The program does its own warm-up; the harness takes medians and spreads as for every other figure.
/// </summary>
internal static class ExternalBaseline
{
    /// <summary>True when the program ran and exited 0.</summary>
    public static bool Run(HarnessContext ctx, string program, IEnumerable<string> args, TimeSpan timeout, int bytesPerItem = 0, string? workingDirectory = null)
    {
        string[] argv = args.ToArray();
        string label = $"{Path.GetFileName(program)} {string.Join(' ', argv)}";
        ctx.Progress.Detail(label);
        using Process process = ChildProcesses.StartTool(program, argv, workingDirectory);
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        var notes = new HashSet<string>(StringComparer.Ordinal);
        var reader = Task.Run(() =>
        {
            string? line;
            while ((line = process.StandardOutput.ReadLine()) is not null)
            {
                Parse(ctx, line, notes, bytesPerItem);
            }
        });

        if (!reader.Wait(timeout))
        {
            process.Kill(entireProcessTree: true);
            ctx.Note($"{label}: killed after {timeout.TotalSeconds:0} s; its figures are incomplete");
            return false;
        }

        process.WaitForExit();
        foreach (string note in notes)
        {
            ctx.Note(note);
        }

        if (process.ExitCode != 0)
        {
            ctx.Note($"{label} failed (exit {process.ExitCode}): {stderr.Result.Trim()}");
            return false;
        }

        return true;
    }

    private static void Parse(HarnessContext ctx, string line, HashSet<string> notes, int bytesPerItem)
    {
        string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (line.StartsWith('#'))
        {
            notes.Add(line[1..].Trim());
        }
        else if (parts is ["latency", string name, _, _, _, _, _])
        {
            double[] v = parts[2..].Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
            ctx.RecordLatency(name, new LatencyStats(v[0], v[1], v[2], v[3], v[4], 0));
        }
        else if (parts is ["value", string name2, string value, string unit])
        {
            // A bandwidth only for the figure itself, not for its best / worst slices.
            bool slice = name2.Contains("_best_", StringComparison.Ordinal) || name2.Contains("_worst_", StringComparison.Ordinal);
            ctx.RecordRate(name2, unit, double.Parse(value, CultureInfo.InvariantCulture), unit == "msg/s" && !slice ? bytesPerItem : 0);
        }
    }
}
