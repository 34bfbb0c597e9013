using System.Globalization;

namespace ShmIpc.Bench.Harness;

/// <summary>CPU time of another process, all threads, from /proc/&lt;pid&gt;/stat (utime + stime, clock ticks).</summary>
internal static class ProcessCpu
{
    private static readonly long s_ticksPerSecond = Math.Max(1, NativeMethods.sysconf(NativeMethods.ScClkTck));

    /// <summary>The resolution of a reading: one clock tick.</summary>
    public static TimeSpan Resolution => TimeSpan.FromSeconds(1.0 / s_ticksPerSecond);

    /// <summary>utime + stime of <paramref name="pid"/> so far.</summary>
    public static TimeSpan Read(int pid)
    {
        string text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");

        // "pid (comm) state ...": comm may hold spaces, so count fields after the last ')'.
        string[] fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');

        // fields[0] is field 3 (state); utime is field 14, stime field 15.
        long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / (double)s_ticksPerSecond);
    }

    /// <summary>
    /// Time on CPU of the live threads of <paramref name="pid"/> in nanoseconds, summed over
    /// /proc/&lt;pid&gt;/task/*/schedstat (the scheduler's own accounting, not tick sampling); null
    /// when the kernel has no schedstat. Threads that ended meanwhile are not counted.
    /// </summary>
    public static TimeSpan? ReadPrecise(int pid)
    {
        try
        {
            long ns = 0;
            foreach (string task in Directory.EnumerateDirectories($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/task"))
            {
                string text = File.ReadAllText(Path.Combine(task, "schedstat"));
                ns += long.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), CultureInfo.InvariantCulture);
            }

            return TimeSpan.FromTicks(ns / 100);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }
}
