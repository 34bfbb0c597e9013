using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Hosting;

/// <summary>
/// A diagnostic timeline of a worker's start, off unless the environment variable <c>SHMPOOL_START_TIMELINE</c> is
/// <c>1</c> (in the parent: the children inherit it). Each <see cref="Mark"/> writes one line to standard error:
/// <c>shmpool-start PID PHASE TICKS CPUMS JITTED JITMS</c> (the process's CPU time so far, user + system, methods compiled so far and the JIT's time), where TICKS is <see cref="Stopwatch.GetTimestamp"/> (CLOCK_MONOTONIC on
/// Linux, the same clock in every process), so the parent's and the children's marks line up into one timeline
/// (bench/results/2026-12-07_start.md says how it was read). Off, a mark is one test of a static readonly field.
/// A child keeps its marks until <see cref="Flush"/> (after its first result): the first write to Console.Error costs
/// milliseconds of its own, which would land in the middle of what is measured.
/// </summary>
internal static class StartTimeline
{
    /// <summary>The environment variable that turns the timeline on.</summary>
    public const string Variable = "SHMPOOL_START_TIMELINE";

    private static readonly bool s_enabled = Environment.GetEnvironmentVariable(Variable) == "1";

    // Made only when on: a List of a value tuple is JIT-compiled code, which a worker would pay for at its start.
    private static readonly List<(string Phase, long Ticks, double CpuMs, long Jitted, double JitMs)>? s_marks = s_enabled ? new() : null;

    /// <summary>Keeps the phase <paramref name="phase"/> with the time now, when the timeline is on.</summary>
    public static void Mark(string phase)
    {
        if (s_marks is not null)
        {
            long now = Stopwatch.GetTimestamp();
            lock (s_marks)
            {
                Environment.ProcessCpuUsage cpu = Environment.CpuUsage;
                s_marks.Add((phase, now, (cpu.UserTime + cpu.PrivilegedTime).TotalMilliseconds,
                    System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds));
            }
        }
    }

    /// <summary>Writes the marks kept so far to standard error, when the timeline is on.</summary>
    public static void Flush()
    {
        if (s_marks is null)
        {
            return;
        }

        lock (s_marks)
        {
            foreach ((string phase, long ticks, double cpuMs, long jitted, double jitMs) in s_marks)
            {
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"shmpool-start {Environment.ProcessId} {phase} {ticks} {cpuMs:0.0} {jitted} {jitMs:0.0}"));
            }

            s_marks.Clear();
        }
    }
}
