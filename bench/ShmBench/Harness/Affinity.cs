using System.Runtime.InteropServices;

namespace ShmIpc.Bench.Harness;

/// <summary>
/// Pins the calling thread to one CPU, so two processes that both spin run on different cores and
/// cannot starve each other (the two-core trap). Children are pinned by <see cref="ChildProcesses.Start"/>
/// through the SHMBENCH_CPU variable, which <see cref="Children.ChildRoles"/> applies to its main thread.
/// </summary>
internal static unsafe class Affinity
{
    public const string ChildCpuVariable = "SHMBENCH_CPU";

    /// <summary>True when there are two CPUs to spread spinning peers over.</summary>
    public static bool CanSeparate => Environment.ProcessorCount >= 2;

    /// <summary>Pins this thread to <paramref name="cpu"/> until the returned scope is disposed; a no-op on one CPU.</summary>
    public static Scope PinCurrentThread(int cpu)
    {
        ulong previous = 0;
        if (!CanSeparate || NativeMethods.sched_getaffinity(0, sizeof(ulong), &previous) != 0)
        {
            return default;
        }

        Set(cpu);
        return new Scope(previous);
    }

    /// <summary>Pins this thread to <paramref name="cpu"/> for good (children).</summary>
    public static void Set(int cpu)
    {
        ulong mask = 1UL << (cpu % Math.Min(64, Environment.ProcessorCount));
        if (NativeMethods.sched_setaffinity(0, sizeof(ulong), &mask) != 0)
        {
            Console.Error.WriteLine($"sched_setaffinity failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Restores the previous mask.</summary>
    internal readonly struct Scope(ulong previous) : IDisposable
    {
        public void Dispose()
        {
            ulong mask = previous;
            if (mask != 0)
            {
                _ = NativeMethods.sched_setaffinity(0, sizeof(ulong), &mask);
            }
        }
    }
}
