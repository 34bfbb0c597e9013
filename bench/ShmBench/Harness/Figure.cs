using System.Globalization;

namespace ShmIpc.Bench.Harness;

/// <summary>
/// One measured figure: the median over the measured runs, with the smallest and largest run so the
/// spread is visible. Names are "<c>origin.what_size_kind</c>": <c>shmipc.*</c> for the library,
/// <c>c.*</c>, <c>dotnet.*</c>, <c>py.*</c> for the baselines.
/// </summary>
internal sealed record Figure(string Name, double Value, string Unit, double Min, double Max, int Runs, string Scenario)
{
    /// <summary>(max - min) / median, in percent; 0 for a single run.</summary>
    public double SpreadPct => Runs < 2 || Value == 0 ? 0 : (Max - Min) / Math.Abs(Value) * 100;

    /// <summary>The line every figure is printed as: "name: value unit".</summary>
    public string ToLine() => $"{Name}: {FormatValue(Value)} {Unit}";

    /// <summary>Plain numbers, invariant culture, with as many decimals as the size warrants.</summary>
    public static string FormatValue(double v) => Math.Abs(v) switch
    {
        >= 1000 => v.ToString("0", CultureInfo.InvariantCulture),
        >= 10 => v.ToString("0.0", CultureInfo.InvariantCulture),
        _ => v.ToString("0.###", CultureInfo.InvariantCulture),
    };

    /// <summary>For people: ns become us/ms, msg/s become M msg/s.</summary>
    public static string Humanize(double v, string unit) => unit switch
    {
        "ns" => LatencyStats.Fmt(v),
        "msg/s" or "items/s" when v >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{v / 1e6:0.00} M {unit}"),
        "msg/s" or "items/s" when v >= 1e3 => string.Create(CultureInfo.InvariantCulture, $"{v / 1e3:0.0} k {unit}"),
        _ => $"{FormatValue(v)} {unit}",
    };
}

/// <summary>The per-run values of one figure, collected while a scenario runs.</summary>
internal sealed class SampleSeries(string name, string unit, string scenario)
{
    private readonly List<double> _values = new();

    public string Name { get; } = name;

    public string Unit { get; } = unit;

    public string Scenario { get; } = scenario;

    public void Add(double value) => _values.Add(value);

    /// <summary>How many runs were recorded.</summary>
    public int Count => _values.Count;

    /// <summary>The latest run's value.</summary>
    public double Last => _values[^1];

    public Figure ToFigure()
    {
        double[] sorted = _values.Order().ToArray();
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2;
        return new Figure(Name, median, Unit, sorted[0], sorted[^1], n, Scenario);
    }
}
