using System.Diagnostics;

namespace ShmIpc.Bench.Harness;

/// <summary>How much to measure: iteration counts are scaled, every figure is the median of <see cref="Runs"/> runs after a warm-up.</summary>
/// <param name="Quick">The README demo: one short run per figure.</param>
/// <param name="Scale">Multiplies every iteration count (0.1 while developing).</param>
/// <param name="Runs">Measured runs per figure, after one warm-up run.</param>
/// <param name="IdleWindow">How long the idle scenario watches a blocked process.</param>
/// <param name="Save">Write bench/results/*.md and *.csv.</param>
internal sealed record HarnessOptions(bool Quick, double Scale, int Runs, TimeSpan IdleWindow, bool Save);

/// <summary>How many operations one figure costs: a warm-up run, then <see cref="Runs"/> runs of <see cref="Count"/>.</summary>
internal readonly record struct RunPlan(int Count, int Warmup, int Runs)
{
    /// <summary>Every operation of the warm-up and all runs: what a peer process must serve (unless <see cref="SteadyState"/>).</summary>
    public long Total => Warmup + ((long)Count * Runs);

    /// <summary>
    /// Warm up for <see cref="HarnessContext.WarmupTime"/> (repeating the warm-up run), not once: for figures whose runs
    /// are short next to tiered compilation's ~100 ms. Only with peers that serve any number of operations.
    /// </summary>
    public bool SteadyState { get; init; }
}

/// <summary>
/// A library figure measured back to back with its baseline: before each of the library's runs,
/// <see cref="Baseline"/>(r) measures one run of the baseline; after it, <see cref="Figure"/> records
/// <see cref="Numerator"/> / <see cref="Denominator"/> of that repetition (the last value of each). The VM's
/// drift (the spin round trips move 3x between minutes) then mostly cancels in the ratio; the pair's
/// median and spread are what the goal uses (<see cref="Goal.Paired"/>).
/// </summary>
internal sealed record Pairing(string Figure, string Numerator, string Denominator, Action<int> Baseline);

/// <summary>
/// What a scenario gets: the options, the progress line, and the recorders every figure goes through
/// (so warm-up, repeated runs, medians and spreads are the same for the library and every baseline).
/// </summary>
internal sealed class HarnessContext
{
    private readonly Dictionary<string, SampleSeries> _series = new(StringComparer.Ordinal);
    private readonly List<string> _notes = new();
    private readonly Dictionary<string, string> _invalid = new(StringComparer.Ordinal);

    public HarnessContext(HarnessOptions options, Progress progress)
    {
        Options = options;
        Progress = progress;
    }

    public HarnessOptions Options { get; }

    public Progress Progress { get; }

    /// <summary>The scenario now running (figures are filed under it).</summary>
    public string Scenario { get; set; } = "";

    public IReadOnlyList<string> Notes => _notes;

    /// <summary>The plan for a figure whose full-run size is <paramref name="count"/> operations per run.</summary>
    public RunPlan Plan(int count, int minimum = 100)
    {
        int scaled = Math.Max(minimum, (int)Math.Min(int.MaxValue, count * Options.Scale));
        return new RunPlan(scaled, Math.Max(1, scaled / 10), Options.Runs);
    }

    /// <summary>A remark that belongs in the results (pinning, a skipped baseline, a substitute).</summary>
    public void Note(string text)
    {
        string note = $"[{Scenario}] {text}";
        if (!_notes.Contains(note))
        {
            _notes.Add(note);
            Progress.Line($"  note: {text}");
        }
    }

    /// <summary>Records one run's value of a figure.</summary>
    public void Record(string name, string unit, double value)
    {
        if (!_series.TryGetValue(name, out SampleSeries? series))
        {
            series = new SampleSeries(name, unit, Scenario);
            _series.Add(name, series);
        }

        series.Add(value);
    }

    /// <summary>Records one run of per-operation times as the figures name_median, _p90, _p99, _p999, _max (ns).</summary>
    public void RecordLatency(string name, LatencyStats stats)
    {
        Record(name + "_median", "ns", stats.P50);
        Record(name + "_p90", "ns", stats.P90);
        Record(name + "_p99", "ns", stats.P99);
        Record(name + "_p999", "ns", stats.P999);
        Record(name + "_max", "ns", stats.Max);
    }

    /// <summary>Records a rate; with <paramref name="bytesPerItem"/> also its bandwidth in MB/s ("_throughput" becomes "_bandwidth").</summary>
    public void RecordRate(string name, string unit, double perSecond, int bytesPerItem = 0)
    {
        Record(name, unit, perSecond);
        if (bytesPerItem > 0)
        {
            string bandwidth = name.EndsWith("_throughput", StringComparison.Ordinal)
                ? name[..^"_throughput".Length] + "_bandwidth"
                : name + "_bandwidth";
            Record(bandwidth, "MB/s", perSecond * bytesPerItem / 1e6);
        }
    }

    /// <summary>
    /// Measures a latency figure: <paramref name="measure"/>(n) performs n operations and returns their
    /// Stopwatch ticks. One warm-up run (for <see cref="WarmupTime"/> with <see cref="RunPlan.SteadyState"/>), then
    /// <see cref="RunPlan.Runs"/> recorded runs.
    /// </summary>
    public void Latency(string name, RunPlan plan, Func<int, long[]> measure, Pairing? pairing = null)
    {
        Progress.Detail($"{name} warm-up");
        WarmUp(plan, () => measure(plan.Warmup));
        for (int r = 0; r < plan.Runs; r++)
        {
            (int, int) before = PairCounts(pairing);
            pairing?.Baseline(r);
            Progress.Detail($"{name} run {r + 1}/{plan.Runs}");
            long[] ticks = measure(plan.Count);
            RecordLatency(name, LatencyStats.From(ticks, ticks.Length));
            RecordPair(pairing, before);
        }
    }

    /// <summary>
    /// Measures a rate: <paramref name="measure"/>(n) moves n items and returns the Stopwatch ticks it took.
    /// One warm-up run (for <see cref="WarmupTime"/> with <see cref="RunPlan.SteadyState"/>), then <see cref="RunPlan.Runs"/> recorded runs.
    /// </summary>
    public void Rate(string name, string unit, RunPlan plan, Func<int, long> measure, int bytesPerItem = 0, Pairing? pairing = null)
    {
        Progress.Detail($"{name} warm-up");
        WarmUp(plan, () => measure(plan.Warmup));
        for (int r = 0; r < plan.Runs; r++)
        {
            (int, int) before = PairCounts(pairing);
            pairing?.Baseline(r);
            Progress.Detail($"{name} run {r + 1}/{plan.Runs}");
            long ticks = measure(plan.Count);
            RecordRate(name, unit, plan.Count * (double)Stopwatch.Frequency / Math.Max(1, ticks), bytesPerItem);
            RecordPair(pairing, before);
        }
    }

    /// <summary>
    /// How long warm-up runs repeat before the first recorded run of a <see cref="RunPlan.SteadyState"/> plan. .NET's tiered compilation optimizes a hot method
    /// fully only after ~100 ms of calls (call counting starts late, compiles in the background): a run of a few
    /// tens of milliseconds right after one short warm-up measured half-optimized code, for the library and for the
    /// .NET baselines alike (Apply: 0.8-1.0 us before, 0.34 us after).
    /// </summary>
    public static readonly TimeSpan WarmupTime = TimeSpan.FromSeconds(1);

    /// <summary>At most this many warm-up runs (one run of a slow baseline can take long).</summary>
    private const int MaxWarmupRuns = 50;

    private static void WarmUp(RunPlan plan, Action run)
    {
        if (!plan.SteadyState)
        {
            run();
            return;
        }

        long until = Stopwatch.GetTimestamp() + (long)(WarmupTime.TotalSeconds * Stopwatch.Frequency);
        for (int i = 0; i < MaxWarmupRuns; i++)
        {
            run();
            if (Stopwatch.GetTimestamp() >= until)
            {
                break;
            }
        }
    }

    /// <summary>
    /// One repetition of two measurements that record themselves (two C programs, say): <paramref name="pairing"/>'s
    /// baseline, then <paramref name="measure"/>, which records the numerator; the pair is recorded as <see cref="Rate"/> does.
    /// </summary>
    public void PairOnce(Pairing pairing, Action measure)
    {
        (int, int) before = PairCounts(pairing);
        pairing.Baseline(0);
        measure();
        RecordPair(pairing, before);
    }

    /// <summary>How many values the pair's numerator and denominator have before a repetition.</summary>
    private (int Numerator, int Denominator) PairCounts(Pairing? pairing) => pairing is null
        ? (0, 0)
        : (CountOf(pairing.Numerator), CountOf(pairing.Denominator));

    private int CountOf(string name) => _series.TryGetValue(name, out SampleSeries? s) ? s.Count : 0;

    /// <summary>
    /// After the library's run r: records numerator / denominator of this repetition as the pair's figure, but
    /// only when this repetition added exactly one value to each (a baseline that failed or was skipped pairs
    /// nothing rather than a stale value). Counting per repetition, not in all, lets a baseline that another
    /// scenario of the same run also measured (the C semaphore ping-pong: pipe and sync) pair with each.
    /// </summary>
    private void RecordPair(Pairing? pairing, (int Numerator, int Denominator) before)
    {
        if (pairing is null
            || CountOf(pairing.Numerator) != before.Numerator + 1
            || CountOf(pairing.Denominator) != before.Denominator + 1
            || _series[pairing.Denominator].Last == 0)
        {
            return;
        }

        Record(pairing.Figure, "ratio", _series[pairing.Numerator].Last / _series[pairing.Denominator].Last);
    }

    /// <summary>Every figure recorded so far, in recording order.</summary>
    public IReadOnlyList<Figure> Figures() => _series.Values.Select(static s => s.ToFigure()).ToList();

    /// <summary>The figures of one scenario.</summary>
    public IReadOnlyList<Figure> FiguresOf(string scenario) =>
        _series.Values.Where(s => s.Scenario == scenario).Select(static s => s.ToFigure()).ToList();

    /// <summary>
    /// Marks a figure as not measuring what its name says (the run showed it), with the reason: it is still
    /// recorded and printed, but a goal that uses it is reported as invalid instead of met or not met.
    /// </summary>
    public void Invalidate(string name, string reason)
    {
        _invalid[name] = reason;
        Note($"{name} is INVALID for its goal: {reason}");
    }

    /// <summary>Why a figure is invalid, or null.</summary>
    public string? InvalidReason(string name) => _invalid.GetValueOrDefault(name);

    /// <summary>The median of a figure, or null when it was not measured.</summary>
    public double? ValueOf(string name) => _series.TryGetValue(name, out SampleSeries? s) ? s.ToFigure().Value : null;

    /// <summary>The last value recorded for a figure (the run just measured), or null when it was not measured.</summary>
    public double? LastOf(string name) => _series.TryGetValue(name, out SampleSeries? s) ? s.Last : null;

    /// <summary>A figure (median, min, max, runs), or null when it was not measured.</summary>
    public Figure? FigureOf(string name) => _series.TryGetValue(name, out SampleSeries? s) ? s.ToFigure() : null;
}
