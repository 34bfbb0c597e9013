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
internal sealed record GoalResult(Goal Goal, double? Ratio, GoalStatus Status, string Detail)
{
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
    public static IReadOnlyList<GoalResult> Evaluate(Func<string, double?> valueOf, IEnumerable<string>? scenarios = null, Func<string, string?>? invalidReason = null)
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
            string? invalid = invalidReason?.Invoke(goal.Numerator) ?? (goal.Denominator is null ? null : invalidReason?.Invoke(goal.Denominator));
            if (invalid is not null)
            {
                results.Add(new GoalResult(goal, ratio, GoalStatus.Invalid, invalid));
                continue;
            }

            bool met = goal.Test switch
            {
                GoalTest.AtMost => ratio <= goal.Target,
                GoalTest.AtLeast => ratio >= goal.Target,
                GoalTest.Below => ratio < goal.Target,
                _ => ratio > goal.Target,
            };
            string formula = goal.Denominator is null ? goal.Numerator : $"{goal.Numerator} / {goal.Denominator}";
            results.Add(new GoalResult(goal, ratio, met ? GoalStatus.Met : GoalStatus.NotMet, formula));
        }

        return results;
    }
}
