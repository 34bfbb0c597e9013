using System.Globalization;

namespace ShmIpc.Bench;

/// <summary>Percentiles of recorded per-operation times, in nanoseconds.</summary>
internal readonly record struct LatencyStats(double P50, double P90, double P99, double P999, double Max, int Count)
{
    public static LatencyStats From(long[] ticks, int count)
    {
        Array.Sort(ticks, 0, count);
        double toNs = 1e9 / System.Diagnostics.Stopwatch.Frequency;
        double At(double q) => ticks[Math.Min(count - 1, (int)(q * count))] * toNs;
        return new LatencyStats(At(0.50), At(0.90), At(0.99), At(0.999), ticks[count - 1] * toNs, count);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"p50 {Fmt(P50)}  p90 {Fmt(P90)}  p99 {Fmt(P99)}  p99.9 {Fmt(P999)}  max {Fmt(Max)}");

    public static string Fmt(double ns) => ns switch
    {
        < 1_000 => string.Create(CultureInfo.InvariantCulture, $"{ns:0} ns"),
        < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e3:0.0} us"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e6:0.00} ms"),
    };
}
