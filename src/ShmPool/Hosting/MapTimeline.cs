using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace ShmIpc.Hosting;

/// <summary>
/// A diagnostic timeline of Maps, off unless the environment variable <c>SHMPOOL_MAP_TIMELINE</c> is <c>1</c> (in the
/// parent: the workers inherit it). Each <see cref="Mark"/> keeps one line, written to standard error by
/// <see cref="Flush"/> (the parent after each Map returns, a worker when it ends):
/// <c>shmpool-map PID PHASE ARG TICKS MINFLT VCSW IVCSW GEN2</c>: ARG the chunk id (or the item count), TICKS
/// <see cref="Stopwatch.GetTimestamp"/> (CLOCK_MONOTONIC, the same clock in every process, so the parent's and the
/// workers' marks line up), then the process's minor page faults, voluntary and involuntary context switches so far
/// (getrusage) and gen2 collections so far. Off, a mark is one test of a static readonly field.
/// bench/results/2026-12-07_mapsteady.md says how it was read.
/// </summary>
internal static partial class MapTimeline
{
    /// <summary>The environment variable that turns the timeline on.</summary>
    public const string Variable = "SHMPOOL_MAP_TIMELINE";

    /// <summary>Whether marks are kept (a static readonly field: the JIT drops the marks when it is false).</summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable(Variable) == "1";

    // Made only when on (see StartTimeline: a List of a value tuple is JIT-compiled code a worker would pay for).
    private static readonly List<(string Phase, long Arg, long Ticks, long MinorFaults, long Voluntary, long Involuntary, int Gen2)>? s_marks =
        Enabled ? new() : null;

    /// <summary>Keeps the phase <paramref name="phase"/> of item or chunk <paramref name="arg"/> with the time and counters now, when on.</summary>
    public static void Mark(string phase, long arg)
    {
        if (s_marks is not null)
        {
            MarkCore(phase, arg);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static unsafe void MarkCore(string phase, long arg)
    {
        long now = Stopwatch.GetTimestamp();
        long* usage = stackalloc long[RusageLongs];
        if (GetRusage(RusageSelf, usage) != 0)
        {
            new Span<long>(usage, RusageLongs).Clear();
        }

        int gen2 = GC.CollectionCount(2);
        lock (s_marks!)
        {
            s_marks.Add((phase, arg, now, usage[MinorFaultsIndex], usage[VoluntaryIndex], usage[InvoluntaryIndex], gen2));
        }
    }

    /// <summary>Writes the marks kept so far to standard error, when on.</summary>
    public static void Flush()
    {
        if (s_marks is null)
        {
            return;
        }

        lock (s_marks)
        {
            int pid = Environment.ProcessId;
            foreach ((string phase, long arg, long ticks, long minflt, long vcsw, long ivcsw, int gen2) in s_marks)
            {
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"shmpool-map {pid} {phase} {arg} {ticks} {minflt} {vcsw} {ivcsw} {gen2}"));
            }

            s_marks.Clear();
        }
    }

    // struct rusage on 64-bit Linux: two timevals (4 longs), then 14 longs: maxrss, ixrss, idrss, isrss, minflt, majflt,
    // nswap, inblock, oublock, msgsnd, msgrcv, nsignals, nvcsw, nivcsw.
    private const int RusageLongs = 18;
    private const int MinorFaultsIndex = 8;
    private const int VoluntaryIndex = 16;
    private const int InvoluntaryIndex = 17;
    private const int RusageSelf = 0;

    // Diagnostics only, Linux only (as the pool): not behind the platform interface of src/ShmQueue/Interop.
    [LibraryImport("libc", EntryPoint = "getrusage")]
    private static unsafe partial int GetRusage(int who, long* usage);
}
