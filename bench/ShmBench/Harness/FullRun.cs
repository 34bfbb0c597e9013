using System.Globalization;
using ShmIpc.Bench.Scenarios;

namespace ShmIpc.Bench.Harness;

/// <summary>
/// "full [scenario...] [--runs N] [--scale X] [--idle-seconds S] [--no-save]": runs the named scenarios
/// (all when none is named), prints every figure as "name: value unit", the goals as met / not met,
/// and writes bench/results/.
/// </summary>
internal static class FullRun
{
    public static int Run(string[] args)
    {
        var names = new List<string>();
        int runs = 3;
        double scale = 1;
        double idleSeconds = 10;
        bool save = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--runs":
                    runs = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--scale":
                    scale = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--idle-seconds":
                    idleSeconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--no-save":
                    save = false;
                    break;
                default:
                    if (ScenarioRegistry.Find(args[i]) is null)
                    {
                        Console.Error.WriteLine($"unknown scenario '{args[i]}'; scenarios: {string.Join(", ", ScenarioRegistry.All.Select(s => s.Name))}");
                        return 2;
                    }

                    names.Add(args[i]);
                    break;
            }
        }

        IScenario[] selected = names.Count == 0 ? ScenarioRegistry.All : ScenarioRegistry.All.Where(s => names.Contains(s.Name)).ToArray();
        var options = new HarnessOptions(Quick: false, scale, Math.Max(1, runs), TimeSpan.FromSeconds(idleSeconds), save);
        var ctx = new HarnessContext(options, new Progress());
        DateTimeOffset started = DateTimeOffset.UtcNow;
        MachineInfo machine = MachineInfo.Collect();

        Console.WriteLine($"ShmBench full: {string.Join(' ', selected.Select(s => s.Name))} on {machine.Cpu}, {machine.Cores} cores, {machine.Runtime}, commit {machine.Commit}");
        Console.WriteLine($"{options.Runs} run(s) per figure after a warm-up, scale {scale.ToString(CultureInfo.InvariantCulture)}; median shown, spread = (max - min) / median");
        for (int i = 0; i < selected.Length; i++)
        {
            IScenario scenario = selected[i];
            ctx.Scenario = scenario.Name;
            ctx.Progress.Stage(i + 1, selected.Length, scenario.Name);
            ctx.Progress.Line("");
            ctx.Progress.Line($"== {scenario.Name}: {scenario.Title}");
            try
            {
                scenario.Run(ctx);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ctx.Note($"scenario {scenario.Name} failed: {e.GetType().Name}: {e.Message}");
                Cleanup.RunAll();
            }

            foreach (Figure f in ctx.FiguresOf(scenario.Name))
            {
                // Exactly "name: value unit", for scripts; spreads are in the results file.
                ctx.Progress.Line(f.ToLine());
            }
        }

        ctx.Progress.Done();
        IReadOnlyList<GoalResult> goals = GoalEvaluation.Evaluate(ctx.ValueOf, invalidReason: ctx.InvalidReason, figureOf: ctx.FigureOf);
        PrintGoals(goals);

        if (options.Save)
        {
            (string md, string csv) = ResultsWriter.Write(("dotnet run -c Release --project bench/ShmBench -- full " + string.Join(' ', args)).TrimEnd(),
                machine, started, ctx.Progress.Elapsed, options, selected.Select(s => s.Name).ToList(), ctx.Figures(), goals, ctx.Notes);
            Console.WriteLine();
            Console.WriteLine($"results: {Path.GetRelativePath(Environment.CurrentDirectory, md)}, {Path.GetRelativePath(Environment.CurrentDirectory, csv)}");
        }

        Console.WriteLine($"done in {ctx.Progress.Elapsed.TotalSeconds:0} s");
        return 0;
    }

    public static void PrintGoals(IReadOnlyList<GoalResult> goals)
    {
        Console.WriteLine();
        Console.WriteLine("Goals (ratios measured in this run; \"pairs\": the median of per-repetition ratios, baseline and library back to back, with their range):");
        Console.WriteLine($"  {"goal",-66} {"ratio",8} {"target",8}  status");
        foreach (GoalResult g in goals)
        {
            string tail = g.Status is GoalStatus.NotMeasured or GoalStatus.Invalid ? $" ({g.Detail})" : g.Paired is null ? "" : $" ({g.PairText})";
            Console.WriteLine($"  {g.Goal.Text,-66} {g.RatioText,8} {g.TargetText,8}  {g.StatusText}{tail}");
        }
    }
}
