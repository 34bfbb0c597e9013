using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Bench.Children;

/// <summary>The peers of the sync scenario: an event ponger and a lock-contending counter.</summary>
internal static class SyncRoles
{
    public static int? TryRun(string role, string[] args)
    {
        switch (role)
        {
            case "event-pong":
                EventPong(args[0], args[1], long.Parse(args[2], CultureInfo.InvariantCulture), args[3] == "nospin");
                return 0;
            case "array-sum":
                ArraySum(args[0], args[1]);
                return 0;
            case "lock-count":
                LockCount(args[0], args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
                return 0;
            default:
                return null;
        }
    }

    /// <summary>Waits on auto-reset event <paramref name="pingName"/>, sets <paramref name="pongName"/>, <paramref name="count"/> times.</summary>
    private static void EventPong(string pingName, string pongName, long count, bool noSpin)
    {
        var options = new ShmEventOptions { WaitStrategy = noSpin ? ShmWaitStrategy.NoSpin : ShmWaitStrategy.Default };
        using ShmEvent ping = ShmEvent.Open(pingName, options);
        using ShmEvent pong = ShmEvent.Open(pongName, options);
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        for (long i = 0; i < count; i++)
        {
            ping.Wait();
            pong.Set();
        }
    }

    /// <summary>
    /// After event <paramref name="goName"/> is set, takes lock <paramref name="lockName"/> <paramref name="count"/> times around a
    /// plain increment of ShmValue&lt;long&gt; <paramref name="valueName"/>; prints "DONE &lt;Stopwatch timestamp&gt;" (CLOCK_MONOTONIC, the same in every process).
    /// </summary>
    private static void LockCount(string lockName, string valueName, string goName, int count)
    {
        using ShmLock lk = ShmLock.Open(lockName);
        using ShmValue<long> value = ShmValue<long>.Open(valueName);
        using ShmEvent go = ShmEvent.Open(goName);
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        go.Wait();
        for (int i = 0; i < count; i++)
        {
            lk.Acquire();
            value.Value++;
            lk.Release();
        }

        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"DONE {Stopwatch.GetTimestamp()}"));
        Console.Out.Flush();
    }

    /// <summary>After event <paramref name="goName"/> is set, sums ShmArray&lt;double&gt; <paramref name="arrayName"/>; prints "DONE &lt;Stopwatch timestamp&gt; &lt;sum&gt;".</summary>
    private static void ArraySum(string arrayName, string goName)
    {
        using ShmArray<double> array = ShmArray<double>.Open(arrayName);
        using ShmEvent go = ShmEvent.Open(goName);
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        go.Wait();
        double sum = Sum(array.AsSpan());
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"DONE {Stopwatch.GetTimestamp()} {sum:R}"));
        Console.Out.Flush();
    }

    /// <summary>Compiled optimized at once: the child runs it once, and C's loop is -O2 from the start (no tier-0 or OSR code in the figure).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static double Sum(ReadOnlySpan<double> values)
    {
        // Two vector accumulators (8 partial sums with AVX2), as the C floor keeps eight and numpy sums pairwise: one
        // running sum is bound by the latency of each addition. The values' partial sums are exact in any order.
        var a0 = System.Numerics.Vector<double>.Zero;
        var a1 = System.Numerics.Vector<double>.Zero;
        int width = System.Numerics.Vector<double>.Count;
        int i = 0;
        for (; i <= values.Length - (2 * width); i += 2 * width)
        {
            a0 += new System.Numerics.Vector<double>(values.Slice(i, width));
            a1 += new System.Numerics.Vector<double>(values.Slice(i + width, width));
        }

        double sum = System.Numerics.Vector.Sum(a0 + a1);
        for (; i < values.Length; i++)
        {
            sum += values[i];
        }

        return sum;
    }
}
