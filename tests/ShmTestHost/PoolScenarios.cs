using System.Globalization;

namespace ShmIpc.TestHost;

internal static partial class Scenarios
{
    static partial void RegisterPool()
    {
        // process-exit-with-child <daemon: 0|1> <path>: starts a child that waits for <path>.go, then writes <path>.done;
        // prints "CHILD <pid>", then "EXITING", and returns from Main without disposing the child.
        Add("process-exit-with-child", a =>
        {
            var child = ShmProcess.Start(PoolFunctions.WaitForGoThenWrite, a[1], new ShmProcessOptions { Daemon = a[0] == "1" });
            Say("CHILD " + child.Pid.ToString(CultureInfo.InvariantCulture));
            Say("EXITING");
            return 0;
        });

        // process-crash-with-child: starts a daemon child that waits forever, prints "CHILD <pid>", then dies of an unhandled exception.
        Add("process-crash-with-child", a =>
        {
            var child = ShmProcess.Start(PoolFunctions.WaitForGoThenWrite, "/nonexistent/never");
            Say("CHILD " + child.Pid.ToString(CultureInfo.InvariantCulture));
            var crash = new Thread(() => throw new InvalidOperationException("the parent crashes"));
            crash.Start();
            crash.Join();
            return 0;
        });

        // A console app using a pool: Map of a static method of this assembly; prints "SUM <sum of cubes 1..n>".
        Add("pool-console", a =>
        {
            using var pool = new ShmPool(2);
            long[] cubes = pool.Map(PoolFunctions.Cube, Enumerable.Range(1, Int(a[0])));
            Say("PIDS " + string.Join(' ', pool.WorkerPids));
            Say("SUM " + cubes.Sum().ToString(CultureInfo.InvariantCulture));
            return 0;
        });

        // Measurements (not assertions): "pool-latency <workers> <calls>" prints Apply round-trip percentiles.
        Add("pool-latency", a =>
        {
            int workers = Int(a[0]);
            int calls = Int(a[1]);
            using var pool = new ShmPool(workers);

            // One second of calls first: tiered compilation optimizes the hot methods (here and in the worker) only
            // after ~100 ms of calls, so shorter warm-ups measure half-optimized code.
            for (long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency; System.Diagnostics.Stopwatch.GetTimestamp() < until;)
            {
                _ = pool.Apply(PoolFunctions.Identity, 0);
            }

            var samples = new double[calls];
            long allocated = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < calls; i++)
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                _ = pool.Apply(PoolFunctions.Identity, i);
                // Raw ticks: GetElapsedTime's TimeSpan rounds to 0.1 µs, too coarse for a ~1 µs round trip.
                samples[i] = (System.Diagnostics.Stopwatch.GetTimestamp() - start) * 1e6 / System.Diagnostics.Stopwatch.Frequency;
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
            Array.Sort(samples);
            Say(string.Create(CultureInfo.InvariantCulture,
                $"APPLY workers={workers} calls={calls} p50={samples[calls / 2]:0.00}us p90={samples[calls * 9 / 10]:0.00}us p99={samples[calls * 99 / 100]:0.00}us bytes/call={allocated / (double)calls:0}"));

            // The worker's side: bytes its loop thread allocates per Apply, read by the function itself in a one-worker pool.
            using var single = new ShmPool(1);
            for (int i = 0; i < 2000; i++)
            {
                _ = single.Apply(PoolFunctions.Identity, i);
            }

            long before = single.Apply(PoolFunctions.AllocatedBytes, 0);
            for (int i = 0; i < calls; i++)
            {
                _ = single.Apply(PoolFunctions.Identity, i);
            }

            long after = single.Apply(PoolFunctions.AllocatedBytes, 0);
            Say(string.Create(CultureInfo.InvariantCulture, $"APPLY-WORKER calls={calls} bytes/call={(after - before) / (double)(calls + 1):0}"));
            return 0;
        });

        // "pool-alloc <workers> <calls>": how many Apply calls allocated anything on the caller's thread, by size
        // (a steady allocation-free path prints nothing but the rare ones).
        Add("pool-alloc", a =>
        {
            using var pool = new ShmPool(Int(a[0]));
            for (int i = 0; i < 2000; i++)
            {
                _ = pool.Apply(PoolFunctions.Identity, i);
            }

            var hist = new Dictionary<long, int>();
            for (int i = 0; i < Int(a[1]); i++)
            {
                long b = GC.GetAllocatedBytesForCurrentThread();
                _ = pool.Apply(PoolFunctions.Identity, i);
                b = GC.GetAllocatedBytesForCurrentThread() - b;
                if (b != 0)
                {
                    hist[b] = hist.GetValueOrDefault(b) + 1;
                }
            }

            Say("ALLOC " + string.Join(' ', hist.OrderBy(static kv => kv.Key).Select(static kv => $"{kv.Key}B x{kv.Value}")));
            return 0;
        });

        // "pool-map <workers> <items> <chunk size, 0 = default>": Map of a trivial function over ints, items/s.
        Add("pool-map", a =>
        {
            int workers = Int(a[0]);
            int[] items = Enumerable.Range(0, Int(a[1])).ToArray();
            int chunk = Int(a[2]);
            using var pool = new ShmPool(workers);
            for (long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency; System.Diagnostics.Stopwatch.GetTimestamp() < until;)
            {
                _ = pool.Map(PoolFunctions.Identity, items, chunk);
            }

            var runs = new List<double>();
            for (int r = 0; r < 15; r++)
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                int[] results = pool.Map(PoolFunctions.Identity, items, chunk);
                runs.Add(items.Length / System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds);
                if (results[^1] != items[^1])
                {
                    throw new InvalidOperationException("wrong result");
                }
            }

            runs.Sort();
            Say(string.Create(CultureInfo.InvariantCulture, $"MAP workers={workers} items={items.Length} chunk={chunk} median={runs[7] / 1e6:0.00}M items/s best={runs[14] / 1e6:0.00}M worst={runs[0] / 1e6:0.00}M gen2={GC.CollectionCount(2)}"));
            return 0;
        });

        // "pool-cpu <items> <rounds>": Map of a ~1 ms function (chunk size 1) on Pool(1) then Pool(2), <rounds> times; prints each
        // round's Pool(1) time / Pool(2) time and their median (the CPU-bound scaling figure of the bench).
        Add("pool-cpu", a =>
        {
            int[] items = Enumerable.Range(0, Int(a[0])).ToArray();
            int rounds = Int(a[1]);
            using var one = new ShmPool(1);
            using var two = new ShmPool(2);
            double Time(ShmPool pool)
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                _ = pool.Map(PoolFunctions.BusyOneMs, items, 1);
                return System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }

            for (long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency; System.Diagnostics.Stopwatch.GetTimestamp() < until;)
            {
                _ = one.Map(PoolFunctions.BusyOneMs, items.Take(40), 1);
                _ = two.Map(PoolFunctions.BusyOneMs, items.Take(40), 1);
            }
            var ratios = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                double t1 = Time(one);
                double t2 = Time(two);
                ratios.Add(t1 / t2);
                Say(string.Create(CultureInfo.InvariantCulture, $"CPU items={items.Length} pool1={t1:0.0}ms pool2={t2:0.0}ms scaling={t1 / t2:0.000}"));
            }

            ratios.Sort();
            Say(string.Create(CultureInfo.InvariantCulture, $"CPU median scaling={ratios[rounds / 2]:0.000}"));
            return 0;
        });

        // "pool-start <workers>": from new ShmPool to the first Apply result, in a process that has not used a pool yet.
        Add("pool-start", a =>
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            using var pool = new ShmPool(Int(a[0]));
            double created = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            _ = pool.Apply(PoolFunctions.Identity, 1);
            Say(string.Create(CultureInfo.InvariantCulture, $"START workers={a[0]} ms={System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds:0.0} (constructor {created:0.0} ms)"));
            return 0;
        });

        // "pool-start-warm <workers> <runs>": as pool-start, in a process that started a pool once already (the bench's
        // way): the children's start, not the parent's JIT. Prints each run and the median.
        Add("pool-start-warm", a =>
        {
            int workers = Int(a[0]);
            using (var warm = new ShmPool(workers))
            {
                _ = warm.Apply(PoolFunctions.Identity, 1);
            }

            var runs = new List<double>();
            for (int r = 0; r < Int(a[1]); r++)
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                using var pool = new ShmPool(workers);
                _ = pool.Apply(PoolFunctions.Identity, 1);
                runs.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }

            Say(string.Create(CultureInfo.InvariantCulture, $"START-WARM workers={workers} runs={string.Join(' ', runs.Select(static r => r.ToString("0.0", CultureInfo.InvariantCulture)))} median={runs.Order().ElementAt(runs.Count / 2):0.0} ms"));
            return 0;
        });

        // "pool-many <workers> <items>": a large pool (Python's test suite builds Pool(200)): the constructor's time, the first
        // Apply result, every worker ready, then a Map of <items> ints (chunk size 1) checked item by item. Prints "PIDS ..."
        // (the workers), then "MANY ..." with the times (ms from the constructor's call) and the CPU each worker used (ms).
        Add("pool-many", a =>
        {
            int workers = Int(a[0]);
            int[] items = Enumerable.Range(0, Int(a[1])).ToArray();
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            using var pool = new ShmPool(workers);
            double created = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            _ = pool.Apply(PoolFunctions.Identity, 1);
            double first = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            bool allReadyAtFirst = pool.WaitForWorkers(TimeSpan.Zero);
            pool.WaitForWorkers(Timeout.InfiniteTimeSpan);
            double ready = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            long[] cubes = pool.Map(PoolFunctions.Cube, items, 1);
            double mapped = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            for (int i = 0; i < items.Length; i++)
            {
                if (cubes[i] != (long)i * i * i)
                {
                    throw new InvalidOperationException($"item {i}: {cubes[i]}");
                }
            }

            double cpu = pool.WorkerPids.Average(PoolFunctions.CpuMs);
            Say("PIDS " + string.Join(' ', pool.WorkerPids));
            Say(string.Create(CultureInfo.InvariantCulture,
                $"MANY workers={workers} items={items.Length} constructor={created:0.0} first={first:0.0} all-ready-at-first={allReadyAtFirst} ready={ready:0.0} mapped={mapped:0.0} worker-cpu={cpu:0}"));
            return 0;
        });

        // "pool-idle <workers> <seconds>": once every worker is ready, the CPU the idle workers use over <seconds> (ms per
        // worker per second) and their resident memory (VmRSS, MB per worker). Prints "IDLE ...".
        Add("pool-idle", a =>
        {
            using var pool = new ShmPool(Int(a[0]));
            pool.WaitForWorkers(Timeout.InfiniteTimeSpan);
            int[] pids = [.. pool.WorkerPids];

            double before = pids.Sum(PoolFunctions.CpuMs);
            Thread.Sleep(TimeSpan.FromSeconds(Int(a[1])));
            double after = pids.Sum(PoolFunctions.CpuMs);
            Say(string.Create(CultureInfo.InvariantCulture, $"IDLE-FIRST cpu={(after - before) / pids.Length / Int(a[1]):0.00} ms/s"));
            before = after;
            Thread.Sleep(TimeSpan.FromSeconds(Int(a[1])));
            after = pids.Sum(PoolFunctions.CpuMs);
            double rss = pids.Average(static pid => double.Parse(File.ReadLines($"/proc/{pid}/status").First(static l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024);
            Say(string.Create(CultureInfo.InvariantCulture, $"IDLE workers={pids.Length} cpu={(after - before) / pids.Length / Int(a[1]):0.00} ms/s rss={rss:0.0} MB"));
            return 0;
        });

        // "sweep-time": how long this process's first and second stale sweep of /dev/shm take (ms), and the CPU of the first.
        Add("sweep-time", a =>
        {
            TimeSpan cpu0 = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            _ = ShmMaintenance.RemoveStaleSegments();
            double first = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            TimeSpan cpu1 = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            start = System.Diagnostics.Stopwatch.GetTimestamp();
            _ = ShmMaintenance.RemoveStaleSegments();
            double second = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            Say(string.Create(CultureInfo.InvariantCulture, $"SWEEP files={Directory.GetFiles("/dev/shm").Length} first={first:0.0} ms (cpu {(cpu1 - cpu0).TotalMilliseconds:0}) second={second:0.0} ms"));
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
    /// <summary>Waits until <paramref name="path"/>.go exists, then writes <paramref name="path"/>.done.</summary>
    public static void WaitForGoThenWrite(string path)
    {
        SpinWait.SpinUntil(() => File.Exists(path + ".go"));
        File.WriteAllText(path + ".done", "done");
    }

    public static long Cube(int x) => (long)x * x * x;

    /// <summary>The CPU process <paramref name="pid"/> used so far: utime + stime, fields 14 and 15 of /proc/PID/stat, in clock ticks of 10 ms.</summary>
    public static double CpuMs(int pid)
    {
        string[] f = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ');
        return (long.Parse(f[12], CultureInfo.InvariantCulture) + long.Parse(f[13], CultureInfo.InvariantCulture)) * 10.0;
    }

    public static int Identity(int x) => x;

    /// <summary>The bytes the calling thread (a worker's loop) has allocated so far.</summary>
    public static long AllocatedBytes(int ignored) => GC.GetAllocatedBytesForCurrentThread();

    /// <summary>Computes for about 1 ms of wall time, returns a checksum.</summary>
    public static int BusyOneMs(int x)
    {
        long end = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency / 1000;
        int acc = x;
        while (System.Diagnostics.Stopwatch.GetTimestamp() < end)
        {
            for (int i = 0; i < 100; i++)
            {
                acc = (acc * 31) + i;
            }
        }

        return acc;
    }

    public static int WaitForever(int ignored)
    {
        new ManualResetEventSlim().Wait();
        return 0;
    }
}
