using System.Runtime.InteropServices;

namespace ShmIpc.Bench.Harness;

/// <summary>The few libc calls the harness needs (Linux).</summary>
internal static partial class NativeMethods
{
    public const int ScClkTck = 2;

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int sched_setaffinity(int pid, nint cpusetsize, ulong* mask);

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int sched_getaffinity(int pid, nint cpusetsize, ulong* mask);

    [LibraryImport("libc")]
    public static partial long sysconf(int name);
}
