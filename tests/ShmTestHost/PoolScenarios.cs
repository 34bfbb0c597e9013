using System.Globalization;

namespace ShmIpc.TestHost;

internal static partial class Scenarios
{
    static partial void RegisterPool()
    {
        // A console app using a pool: Map of a static method of this assembly; prints "SUM <sum of cubes 1..n>".
        Add("pool-console", a =>
        {
            using var pool = new ShmPool(2);
            long[] cubes = pool.Map(PoolFunctions.Cube, Enumerable.Range(1, Int(a[0])));
            Say("PIDS " + string.Join(' ', pool.WorkerPids));
            Say("SUM " + cubes.Sum().ToString(CultureInfo.InvariantCulture));
            return 0;
        });

        // A parent that dies: starts a pool and a ShmProcess, prints their pids, holds until killed.
        Add("pool-orphan", a =>
        {
            var pool = new ShmPool(2);
            _ = pool.Map(PoolFunctions.Cube, Enumerable.Range(1, 100), chunkSize: 1);
            var process = ShmProcess.Start<int, int>(PoolFunctions.WaitForever, 0);
            Say("PIDS " + string.Join(' ', pool.WorkerPids.Append(process.Pid)));
            Hold();
            process.Dispose();
            pool.Dispose();
            return 0;
        });
    }
}

internal static class PoolFunctions
{
    public static long Cube(int x) => (long)x * x * x;

    public static int WaitForever(int ignored)
    {
        new ManualResetEventSlim().Wait();
        return 0;
    }
}
