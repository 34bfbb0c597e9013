using System.Globalization;
using System.Text;

namespace ShmIpc.Bench.Harness;

/// <summary>
/// Writes bench/results/&lt;date&gt;_&lt;time&gt;_&lt;mode&gt;.md (machine, commit, date, every figure, every goal
/// ratio) and a .csv of the same figures and goals.
/// </summary>
internal static class ResultsWriter
{
    public static (string Markdown, string Csv) Write(string command, MachineInfo machine, DateTimeOffset started, TimeSpan elapsed,
        HarnessOptions options, IReadOnlyList<string> scenarios, IReadOnlyList<Figure> figures, IReadOnlyList<GoalResult> goals, IReadOnlyList<string> notes)
    {
        Directory.CreateDirectory(RepoPaths.Results);
        string stem = Path.Combine(RepoPaths.Results, $"{started.UtcDateTime:yyyy-MM-dd_HHmmss}_{(options.Quick ? "quick" : "full")}");
        string md = stem + ".md";
        string csv = stem + ".csv";
        File.WriteAllText(md, Markdown(command, machine, started, elapsed, options, scenarios, figures, goals, notes));
        File.WriteAllText(csv, Csv(figures, goals));
        return (md, csv);
    }

    private static string Markdown(string command, MachineInfo machine, DateTimeOffset started, TimeSpan elapsed,
        HarnessOptions options, IReadOnlyList<string> scenarios, IReadOnlyList<Figure> figures, IReadOnlyList<GoalResult> goals, IReadOnlyList<string> notes)
    {
        var sb = new StringBuilder();
        void L(string s = "") => sb.Append(s).Append('\n');

        L($"# ShmBench results, {started.UtcDateTime:yyyy-MM-dd HH:mm} UTC");
        L();
        L($"`{command}`: scenarios {string.Join(", ", scenarios)}; {options.Runs} measured run(s) per figure after a warm-up, iteration scale {Fmt(options.Scale)}; {elapsed.TotalSeconds:0} s in all.");
        L();
        L("| machine | |");
        L("|---|---|");
        L($"| CPU | {machine.Cpu}, {machine.Cores} cores |");
        L($"| memory | {machine.Memory} |");
        L($"| OS | {machine.Os} |");
        L($"| runtime | {machine.Runtime} |");
        L($"| C compiler | {machine.CCompiler} |");
        L($"| Python | {machine.Python} |");
        L($"| commit | {machine.Commit} |");
        L($"| load average at start | {machine.LoadAverage} (1, 5, 15 min; other work on the machine moves the figures) |");
        L();
        L("## Goals");
        L();
        L("Ratios of figures measured in this run; a goal whose figure is missing is *not measured*; one whose figure the run showed to measure something else is *INVALID* (the reason is in the last column).");
        L();
        L("| issue | goal | ratio | target | status | computed from |");
        L("|---|---|---:|---|---|---|");
        foreach (GoalResult g in goals)
        {
            L($"| {g.Goal.Issue} | {g.Goal.Text} | {g.RatioText} | {g.TargetText} | {g.StatusText} | {g.Detail} |");
        }

        L();
        L("## Figures");
        L();
        L("Median of the runs; min and max show the spread.");
        foreach (IGrouping<string, Figure> group in figures.GroupBy(f => f.Scenario))
        {
            L();
            L($"### {group.Key}");
            L();
            L("| figure | median | unit | min | max | spread | runs | |");
            L("|---|---:|---|---:|---:|---:|---:|---|");
            foreach (Figure f in group)
            {
                L($"| `{f.Name}` | {Figure.FormatValue(f.Value)} | {f.Unit} | {Figure.FormatValue(f.Min)} | {Figure.FormatValue(f.Max)} | {f.SpreadPct:0.#}% | {f.Runs} | {Catalog.Spec(f.Name)?.Meaning} |");
            }
        }

        L();
        L("## Notes");
        L();
        foreach (string note in notes)
        {
            L($"- {note}");
        }

        return sb.ToString();
    }

    private static string Csv(IReadOnlyList<Figure> figures, IReadOnlyList<GoalResult> goals)
    {
        var sb = new StringBuilder();
        sb.Append("kind,scenario,name,value,unit,min,max,runs,target,status\n");
        foreach (Figure f in figures)
        {
            sb.Append(CultureInfo.InvariantCulture, $"figure,{f.Scenario},{f.Name},{Raw(f.Value)},{f.Unit},{Raw(f.Min)},{Raw(f.Max)},{f.Runs},,\n");
        }

        foreach (GoalResult g in goals)
        {
            string ratio = g.Ratio is double r ? Raw(r) : "";
            sb.Append(CultureInfo.InvariantCulture, $"goal,{g.Goal.Issue},\"{g.Goal.Text}\",{ratio},ratio,,,,\"{g.TargetText}\",{g.StatusText}\n");
        }

        return sb.ToString();
    }

    private static string Raw(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Fmt(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
}
