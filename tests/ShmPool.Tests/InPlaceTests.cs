using ShmIpc.TestHost;

namespace ShmIpc.Pool.Tests;

/// <summary>MapInPlace and ForEachChunk: results against a sequential loop, a worker killed mid-chunk, validation, cancellation.</summary>
[TestClass]
public sealed class InPlaceTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    private static ShmArray<float> Floats(int length, Func<int, float> value)
    {
        ShmArray<float> array = ShmArray<float>.Create(TestSupport.ShmName("inplace-f"), length);
        Span<float> span = array.AsSpan();
        for (int i = 0; i < length; i++)
        {
            span[i] = value(i);
        }

        return array;
    }

    private static float[] Sequential(ShmArray<float> input, Func<float, float> f) => input.AsSpan().ToArray().Select(f).ToArray();

    [TestMethod]
    public void MapInPlace_equals_a_sequential_loop()
    {
        ShmPool pool = NewPool();
        using ShmArray<float> input = Floats(100_003, static i => (i % 1000) - 500.5f);
        using ShmArray<float> output = Floats(input.Length, static _ => float.NaN);

        pool.MapInPlace(InPlaceTargets.TwoXPlusOne, input, output);

        CollectionAssert.AreEqual(Sequential(input, InPlaceTargets.TwoXPlusOne), output.AsSpan().ToArray());
    }

    [TestMethod]
    public void MapInPlace_changes_the_element_type_and_takes_any_chunk_size_and_repeats_on_the_same_arrays()
    {
        ShmPool pool = NewPool();
        using ShmArray<int> input = ShmArray<int>.Create(TestSupport.ShmName("inplace-i"), 1_001);
        using ShmArray<double> output = ShmArray<double>.Create(TestSupport.ShmName("inplace-d"), input.Length);
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < input.Length; i++)
            {
                input[i] = (i * 7) + round;
            }

            // 1 and 7 do not divide the length; the length itself is one chunk; more than the length too.
            pool.MapInPlace(InPlaceTargets.Root, input, output, chunkSize: round switch { 0 => 7, 1 => 1_001, _ => 5_000 });
            double[] expected = Enumerable.Range(0, input.Length).Select(i => Math.Sqrt((i * 7) + round)).ToArray();
            CollectionAssert.AreEqual(expected, output.AsSpan().ToArray(), $"round {round}");
        }

        pool.MapInPlace(InPlaceTargets.Root, input, output, chunkSize: 1);
        Assert.AreEqual(Math.Sqrt(input[1_000]), output[1_000]);
    }

    [TestMethod]
    public void MapInPlace_may_write_its_input_and_handles_an_empty_array()
    {
        ShmPool pool = NewPool();
        using ShmArray<float> data = Floats(10_000, static i => i);
        float[] expected = Sequential(data, InPlaceTargets.TwoXPlusOne);
        pool.MapInPlace(InPlaceTargets.TwoXPlusOne, data, data, chunkSize: 999);
        CollectionAssert.AreEqual(expected, data.AsSpan().ToArray());

        using ShmArray<float> empty = ShmArray<float>.Create(TestSupport.ShmName("inplace-e"), 0);
        pool.MapInPlace(InPlaceTargets.TwoXPlusOne, empty, empty);
    }

    [TestMethod]
    public void MapInPlace_takes_a_capture_free_lambda()
    {
        ShmPool pool = NewPool();
        using ShmArray<float> input = Floats(3_000, static i => i);
        using ShmArray<long> output = ShmArray<long>.Create(TestSupport.ShmName("inplace-l"), input.Length);
        pool.MapInPlace(static (float x) => (long)(x * 3), input, output, chunkSize: 512);
        CollectionAssert.AreEqual(Enumerable.Range(0, input.Length).Select(static i => i * 3L).ToArray(), output.AsSpan().ToArray());
    }

    [TestMethod]
    public void A_worker_killed_mid_chunk_still_gives_the_same_array_as_a_sequential_loop()
    {
        string counterName = TestSupport.ShmName("inplace-kills");
        using ShmCounter kills = ShmCounter.Create(counterName);
        ShmPool pool = NewPool(2, new ShmPoolOptions { Environment = new Dictionary<string, string> { [InPlaceTargets.KillCounterVariable] = counterName } });
        int[] before = pool.WorkerPids.ToArray();

        // The marker sits in the middle of a chunk: the victim has written the chunk's first half when it dies.
        const int length = 40_000;
        using ShmArray<float> input = Floats(length, static i => i == 25_000 ? InPlaceTargets.Marker : i * 0.5f);
        using ShmArray<float> output = Floats(length, static _ => float.NaN);

        pool.MapInPlace(InPlaceTargets.TwoXPlusOneDyingOnce, input, output, chunkSize: 10_000);

        Assert.AreEqual(2, kills.Value, "the marker was seen twice: by the worker that died, then by the one that ran its chunk again");
        CollectionAssert.AreEqual(Sequential(input, InPlaceTargets.TwoXPlusOne), output.AsSpan().ToArray());
        TestSupport.WaitUntil(() => pool.WorkerPids.Count == 2 && pool.WorkerPids.Except(before).Any(), "the killed worker is replaced");
        Children.Track(pool.WorkerPids);
    }

    [TestMethod]
    public void A_chunk_that_kills_every_worker_it_runs_on_fails_after_three_retries_instead_of_killing_workers_forever()
    {
        string counterName = TestSupport.ShmName("inplace-deaths");
        using ShmCounter deaths = ShmCounter.Create(counterName);
        ShmPool pool = NewPool(2, new ShmPoolOptions { Environment = new Dictionary<string, string> { [InPlaceTargets.KillCounterVariable] = counterName } });
        using ShmArray<float> data = Floats(1, static i => i);

        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => pool.MapInPlace(InPlaceTargets.DieEveryTime, data, data));

        Assert.AreEqual(-9, e.ExitCode);
        Assert.AreEqual(4L, deaths.Value, "run once, then again after each of three crashes");
        TestSupport.WaitUntil(() => pool.WorkerPids.Count == 2, "the killed workers are replaced");
        Children.Track(pool.WorkerPids);
        pool.MapInPlace(InPlaceTargets.TwoXPlusOne, data, data);
        Assert.AreEqual(1f, data[0], "the pool serves on");
    }

    [TestMethod]
    public async Task MapInPlaceAsync_completes_with_the_results()
    {
        ShmPool pool = NewPool();
        using ShmArray<float> input = Floats(50_000, static i => i);
        using ShmArray<float> output = Floats(input.Length, static _ => 0);
        await pool.MapInPlaceAsync(InPlaceTargets.TwoXPlusOne, input, output, chunkSize: 4_096, TestContext.CancellationToken);
        CollectionAssert.AreEqual(Sequential(input, InPlaceTargets.TwoXPlusOne), output.AsSpan().ToArray());
    }

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void ForEachChunk_gives_each_chunk_its_offset_and_works_in_place()
    {
        ShmPool pool = NewPool();
        using ShmArray<long> indices = ShmArray<long>.Create(TestSupport.ShmName("inplace-l"), 12_345);
        pool.ForEachChunk(indices, InPlaceTargets.WriteIndices, chunkSize: 1_000);
        CollectionAssert.AreEqual(Enumerable.Range(0, indices.Length).Select(static i => (long)i).ToArray(), indices.AsSpan().ToArray());

        using ShmArray<int> data = ShmArray<int>.Create(TestSupport.ShmName("inplace-s"), 4_000);
        var random = new Random(17);
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = random.Next();
        }

        int[] expected = data.AsSpan().ToArray();
        for (int start = 0; start < expected.Length; start += 1_000)
        {
            Array.Sort(expected, start, 1_000);
        }

        pool.ForEachChunk(data, InPlaceTargets.SortChunk, chunkSize: 1_000);
        CollectionAssert.AreEqual(expected, data.AsSpan().ToArray(), "each chunk sorted on its own, where it lies");
    }

    [TestMethod]
    public async Task ForEachChunkAsync_completes_and_an_action_that_throws_fails_the_call()
    {
        ShmPool pool = NewPool();
        using ShmArray<long> indices = ShmArray<long>.Create(TestSupport.ShmName("inplace-l"), 5_000);
        await pool.ForEachChunkAsync(indices, InPlaceTargets.WriteIndices, 0, TestContext.CancellationToken);
        Assert.AreEqual(4_999L, indices[4_999]);

        using ShmArray<int> data = ShmArray<int>.Create(TestSupport.ShmName("inplace-t"), 10);
        var e = Assert.ThrowsExactly<ShmRemoteException>(() => pool.ForEachChunk(data, InPlaceTargets.ThrowInChunk));
        StringAssert.Contains(e.Message, "refused");
        StringAssert.Contains(e.Message, data.Name);
    }

    [TestMethod]
    public void A_function_that_throws_fails_the_call_naming_the_element_and_the_pool_serves_on()
    {
        ShmPool pool = NewPool();
        using ShmArray<float> input = Floats(1_000, static i => i == 321 ? InPlaceTargets.Poison : i);
        using ShmArray<float> output = Floats(input.Length, static _ => 0);
        var e = Assert.ThrowsExactly<ShmRemoteException>(() => pool.MapInPlace(InPlaceTargets.TwoXPlusOneOrThrow, input, output, chunkSize: 100));
        Assert.AreEqual(typeof(InvalidOperationException).FullName, e.RemoteType);
        StringAssert.Contains(e.Message, "poisoned input");
        StringAssert.Contains(e.Message, $"element 321 of shared array '{input.Name}'");

        input[321] = 1;
        pool.MapInPlace(InPlaceTargets.TwoXPlusOneOrThrow, input, output, chunkSize: 100);
        Assert.AreEqual(3f, output[321]);
    }

    [TestMethod]
    public void Arguments_are_validated_before_anything_is_sent()
    {
        ShmPool pool = NewPool();
        using ShmArray<float> input = Floats(10, static i => i);
        using ShmArray<float> shorter = Floats(9, static i => i);
        var e = Assert.ThrowsExactly<ArgumentException>(() => pool.MapInPlace(InPlaceTargets.TwoXPlusOne, input, shorter));
        StringAssert.Contains(e.Message, $"'{input.Name}' has 10");
        StringAssert.Contains(e.Message, $"'{shorter.Name}' has 9");

        Assert.ThrowsExactly<ArgumentNullException>(() => pool.MapInPlace<float, float>(null!, input, input));
        Assert.ThrowsExactly<ArgumentNullException>(() => pool.MapInPlace<float, float>(InPlaceTargets.TwoXPlusOne, null!, input));
        Assert.ThrowsExactly<ArgumentNullException>(() => pool.MapInPlace<float, float>(InPlaceTargets.TwoXPlusOne, input, null!));
        Assert.ThrowsExactly<ArgumentNullException>(() => pool.ForEachChunk<int>(null!, InPlaceTargets.SortChunk));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => pool.MapInPlace(InPlaceTargets.TwoXPlusOne, input, input, chunkSize: -1));

        float offset = 1;
        var closure = Assert.ThrowsExactly<ArgumentException>(() => pool.MapInPlace<float, float>(x => x + offset, input, input));
        StringAssert.Contains(closure.Message, "captures");

        ShmArray<float> disposed = Floats(10, static i => i);
        disposed.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => pool.MapInPlace(InPlaceTargets.TwoXPlusOne, disposed, input));
        CollectionAssert.AreEqual(Enumerable.Range(0, 10).Select(static i => (float)i).ToArray(), input.AsSpan().ToArray(), "nothing ran");
    }

    [TestMethod]
    public async Task Cancellation_ends_the_wait_drops_the_chunks_not_started_and_the_pool_serves_on()
    {
        string gateName = TestSupport.ShmName("inplace-gate");
        using ShmEvent gate = ShmEvent.Create(gateName);
        ShmPool pool = NewPool(2, new ShmPoolOptions { Environment = new Dictionary<string, string> { [InPlaceTargets.GateVariable] = gateName } });
        const int chunks = 100;
        using ShmArray<float> input = Floats(chunks, static i => i);
        using ShmArray<float> output = Floats(chunks, static _ => -1);

        using var cts = new CancellationTokenSource();
        Task call = pool.MapInPlaceAsync(InPlaceTargets.WaitForGate, input, output, chunkSize: 1, cts.Token);
        Assert.IsFalse(call.IsCompleted, "the chunks wait at the gate");
        cts.Cancel();
        await Assert.ThrowsAsync<OperationCanceledException>(() => call.WaitAsync(Deadline, TestContext.CancellationToken));

        // The sync form: a token cancelled before the call runs nothing.
        Assert.ThrowsExactly<OperationCanceledException>(() => pool.MapInPlace(InPlaceTargets.TwoXPlusOne, input, output, cts.Token));

        gate.Set();
        using ShmArray<float> other = Floats(1_000, static i => i);
        pool.MapInPlace(InPlaceTargets.TwoXPlusOne, other, other);
        Assert.AreEqual(1999f, other[999], "the pool serves on");

        // Only the chunks the workers held when the call was cancelled ran (their results arrived before the call above's).
        int written = output.AsSpan().ToArray().Count(static v => v != -1);
        int held = pool.ProcessCount * ShmPoolOptions.Default.MaxChunksInFlightPerWorker;
        Assert.IsTrue(written <= held, $"{written} of {chunks} chunks ran after the cancellation; the workers held at most {held}");
    }
}
