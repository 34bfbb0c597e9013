using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// inplace (issue 17): Pool(2).MapInPlace of x => 2x + 1 over 2^26 floats in shared memory (shmipc.pool2_map_in_place_ms),
/// beside a single-threaded C loop over the same amount of shared memory (c.loop_2p26_ms) and Python's Pool(2).map over
/// the same data split into numpy chunks (py.pool2_map_numpy_chunks_ms). Always 2^26: the figures' names say so.
/// </summary>
internal sealed class InPlaceScenario : IScenario
{
    private const int Length = 1 << 26;

    private static readonly NativeProgram s_loop = new("inplace_loop.c", ["-O2", "-march=native"]);

    public string Name => "inplace";

    public string Title => "Pool: MapInPlace over 2^26 floats in shared memory, beside a C loop and Python numpy chunks";

    public void Run(HarnessContext ctx)
    {
        MapInPlace(ctx);
        CLoop(ctx);
        PythonBaselines.PoolMapNumpyChunks(ctx, Length);
    }

    /// <summary>
    /// shmipc.pool2_map_in_place_ms: from the call to its return, the default chunking (eight chunks of 2^23 floats).
    /// Both arrays are written here before the first run, and the first (unmeasured) calls map them in the workers, which
    /// keep them mapped: the runs measure the steady state of a pool that works on the same arrays again, as the C loop does.
    /// </summary>
    private static void MapInPlace(HarnessContext ctx)
    {
        ctx.Progress.Step("ShmIpc Pool(2).MapInPlace over 2^26 floats");
        string id = $"bench-{Environment.ProcessId}-inplace";
        using ShmPool pool = Cleanup.Own(new ShmPool(2));
        using ShmArray<float> input = ShmArray<float>.Create(Cleanup.Segment(id + "-in"), Length);
        using ShmArray<float> output = ShmArray<float>.Create(Cleanup.Segment(id + "-out"), Length);
        Span<float> values = input.AsSpan();
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (i % 1000) - 500.5f;
        }

        output.AsSpan().Clear();
        _ = pool.WaitForWorkers(TimeSpan.FromSeconds(30));

        // Warm: the workers map and fault both arrays in, and their loop is compiled fully (tiered compilation).
        for (int i = 0; i < 3; i++)
        {
            pool.MapInPlace(BenchInPlaceTargets.TwoXPlusOne, input, output);
        }

        for (int run = 0; run < ctx.Options.Runs; run++)
        {
            output.AsSpan().Clear();
            long start = Stopwatch.GetTimestamp();
            pool.MapInPlace(BenchInPlaceTargets.TwoXPlusOne, input, output);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (output[Length - 1] != (2 * input[Length - 1]) + 1 || output[Length / 2] != (2 * input[Length / 2]) + 1)
            {
                throw new InvalidOperationException("MapInPlace wrote wrong results.");
            }

            ctx.Record("shmipc.pool2_map_in_place_ms", "ms", ms);
        }

        ctx.Note("shmipc.pool2_map_in_place_ms: Pool(2), default chunking (8 chunks of 2^23 floats), arrays already mapped in the workers by three unmeasured calls; c.loop_2p26_ms is one thread of C over the same amount of MAP_SHARED memory, touched first");
    }

    /// <summary>c.loop_2p26_ms: bench/native/inplace_loop.c, one thread, -O2 -march=native.</summary>
    private static void CLoop(HarnessContext ctx)
    {
        if (s_loop.Binary is not string binary)
        {
            ctx.Note($"C baseline 'loop' ({s_loop.Source}) skipped: {s_loop.Problem}");
            return;
        }

        ctx.Progress.Step("C loop over 2^26 floats");
        ExternalBaseline.Run(ctx, binary,
            ["loop", Length.ToString(CultureInfo.InvariantCulture), ctx.Options.Runs.ToString(CultureInfo.InvariantCulture), "2"],
            TimeSpan.FromMinutes(2));
    }
}

/// <summary>The function of the inplace scenario, run in the pool's workers.</summary>
internal static class BenchInPlaceTargets
{
    public static float TwoXPlusOne(float x) => (2 * x) + 1;
}
