using System.Globalization;

namespace ShmIpc.Bench.Harness;

/// <summary>A goal's outcome in this run.</summary>
internal enum GoalStatus
{
    Met,
    NotMet,
    NotMeasured,

    /// <summary>A figure was measured but the run showed it does not measure what the goal needs.</summary>
    Invalid,
}

/// <summary>A goal evaluated against this run's figures.</summary>
internal sealed record GoalResult(Goal Goal, double? Ratio, GoalStatus Status, string Detail, Figure? Paired = null)
{
    /// <summary>For a goal from back-to-back pairs: "pairs xN: min-max"; otherwise empty.</summary>
    public string PairText => Paired is Figure p
        ? string.Create(CultureInfo.InvariantCulture, $"pairs x{p.Runs}: {p.Min:0.###}-{p.Max:0.###}")
        : "";

    public string StatusText => Status switch
    {
        GoalStatus.Met => "met",
        GoalStatus.NotMet => "NOT MET",
        GoalStatus.Invalid => "INVALID",
        _ => "not measured",
    };

    public string TargetText => Goal.Test switch
    {
        GoalTest.AtMost => "<= ",
        GoalTest.AtLeast => ">= ",
        GoalTest.Below => "< ",
        _ => "> ",
    } + Goal.Target.ToString("0.###", CultureInfo.InvariantCulture);

    public string RatioText => Ratio is double r ? r.ToString(r >= 100 ? "0" : "0.###", CultureInfo.InvariantCulture) : "-";
}

/// <summary>Evaluates <see cref="Catalog.Goals"/>: a goal whose figures are missing is "not measured", never guessed.</summary>
internal static class GoalEvaluation
{
    /// <param name="valueOf">A figure's median, or null.</param>
    /// <param name="scenarios">Only the goals of these issues (all when null).</param>
    /// <param name="invalidReason">Why a figure is invalid, or null.</param>
    /// <param name="figureOf">A figure with its spread: lets a goal with <see cref="Goal.Paired"/> use its back-to-back ratios.</param>
    public static IReadOnlyList<GoalResult> Evaluate(Func<string, double?> valueOf, IEnumerable<string>? scenarios = null,
        Func<string, string?>? invalidReason = null, Func<string, Figure?>? figureOf = null)
    {
        HashSet<string>? only = scenarios?.ToHashSet(StringComparer.Ordinal);
        var results = new List<GoalResult>();
        foreach (Goal goal in Catalog.Goals)
        {
            if (only is not null && !only.Contains(goal.Issue))
            {
                continue;
            }

            double? num = valueOf(goal.Numerator);
            double? den = goal.Denominator is null ? 1 : valueOf(goal.Denominator);
            if (num is null || den is null || den == 0)
            {
                string missing = string.Join(", ", new[] { num is null ? goal.Numerator : null, den is null ? goal.Denominator : null }.OfType<string>());
                results.Add(new GoalResult(goal, null, GoalStatus.NotMeasured, $"missing {missing}"));
                continue;
            }

            double ratio = num.Value / den.Value;
            string formula = goal.Denominator is null ? goal.Numerator : $"{goal.Numerator} / {goal.Denominator}";
            Figure? pair = goal.Paired is string pairedName ? figureOf?.Invoke(pairedName) : null;
            if (pair is not null)
            {
                formula = string.Create(CultureInfo.InvariantCulture,
                    $"{formula}, median of {pair.Runs} back-to-back ratios ({pair.Name}: {pair.Min:0.###} to {pair.Max:0.###}; ratio of the medians {ratio:0.###})");
                ratio = pair.Value;
            }
            else if (goal.Paired is not null)
            {
                formula += " (ratio of the medians: the back-to-back pairs were not measured)";
            }

            string? invalid = invalidReason?.Invoke(goal.Numerator) ?? (goal.Denominator is null ? null : invalidReason?.Invoke(goal.Denominator));
            if (invalid is not null)
            {
                results.Add(new GoalResult(goal, ratio, GoalStatus.Invalid, invalid, pair));
                continue;
            }

            bool met = goal.Test switch
            {
                GoalTest.AtMost => ratio <= goal.Target,
                GoalTest.AtLeast => ratio >= goal.Target,
                GoalTest.Below => ratio < goal.Target,
                _ => ratio > goal.Target,
            };
            results.Add(new GoalResult(goal, ratio, met ? GoalStatus.Met : GoalStatus.NotMet, formula, pair));
        }

        return results;
    }
}
