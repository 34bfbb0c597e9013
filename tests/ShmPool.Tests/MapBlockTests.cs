using ShmIpc.Protocol;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// Maps of unmanaged items (RawChunk blocks): chunks queued as they are encoded, the result array allocated without
/// zeroing and its pages populated while the workers run, static functions called through their entry point and
/// instance ones through their delegate. Every result must equal the function's, at chunk-size and ring-size boundaries.
/// </summary>
[TestClass]
public sealed class MapBlockTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    /// <summary>Items of a chunk whose arguments message just fits the pipe's ring (kind, id, function, count, length, then the block).</summary>
    private const int ArgumentsFitTheRing = (ChildChannel.MaxMessageLength - 21) / sizeof(int);

    /// <summary>Items of a chunk whose results message just fits (kind, id, count, size, length, the block, the failure count).</summary>
    private const int ResultsFitTheRing = (ChildChannel.MaxMessageLength - 25) / sizeof(int);

    [TestMethod]
    public void Block_maps_equal_the_function_at_chunk_size_boundaries()
    {
        ShmPool pool = NewPool(2);
        foreach ((int count, int chunkSize) in new[] { (1, 0), (7, 3), (8, 4), (9, 4), (4_096, 4_095), (4_096, 4_096), (4_097, 4_096), (262_143, 0), (262_144, 0), (262_145, 0), (1_000_000, 0), (1_000_003, 100_000) })
        {
            int[] items = Enumerable.Range(-count / 2, count).ToArray();
            int[] expected = items.Select(MapBlockTargets.Triple).ToArray();
            CollectionAssert.AreEqual(expected, pool.Map(MapBlockTargets.Triple, items, chunkSize), $"{count} items, chunk size {chunkSize}");
        }
    }

    [TestMethod]
    public void Block_maps_equal_the_function_around_the_ring_s_message_length()
    {
        // Chunks whose arguments or results just fit the pipe's ring, and just do not (those go through a side segment).
        ShmPool pool = NewPool(2);
        foreach (int chunkSize in new[] { ResultsFitTheRing, ArgumentsFitTheRing, ArgumentsFitTheRing + 1 })
        {
            int[] items = Enumerable.Range(7, (2 * chunkSize) + 5).ToArray();
            long[] expected = items.Select(MapBlockTargets.Widen).ToArray();
            CollectionAssert.AreEqual(expected, pool.Map(MapBlockTargets.Widen, items, chunkSize), $"chunk size {chunkSize}");
        }
    }

    [TestMethod]
    public void Instance_and_static_functions_give_the_same_block_results()
    {
        // A capture-free lambda is an instance method of a compiler-made singleton (called through its delegate); a static
        // method through its entry point. Both, over several Maps: the result arrays are fresh and not zeroed first.
        ShmPool pool = NewPool(2);
        double[] items = Enumerable.Range(0, 300_000).Select(i => i * 0.5).ToArray();
        double[] expected = items.Select(x => (x * 2) + 1).ToArray();
        for (int round = 0; round < 3; round++)
        {
            CollectionAssert.AreEqual(expected, pool.Map(static (double x) => (x * 2) + 1, items), $"lambda, round {round}");
            CollectionAssert.AreEqual(expected, pool.Map(MapBlockTargets.TwiceAndOne, items), $"static, round {round}");
        }
    }

    [TestMethod]
    public void A_failing_item_in_a_large_block_reports_its_exception_and_the_rest_run()
    {
        ShmPool pool = NewPool(2);
        int[] items = Enumerable.Range(0, 600_000).ToArray();

        // Both workers past their first task: from then on a worker runs a block where it lies in the pipe (see WorkerLoop).
        CollectionAssert.AreEqual(items.Select(MapBlockTargets.Triple).ToArray(), pool.Map(MapBlockTargets.Triple, items, chunkSize: 10_000));
        var e = Assert.ThrowsExactly<ShmRemoteException>(() => pool.Map(MapBlockTargets.ThrowAt, items));
        Assert.AreEqual("System.ArgumentException", e.RemoteType);
        Assert.AreEqual($"item {MapBlockTargets.FailingItem} refused", e.RemoteMessage);
        StringAssert.Contains(e.RemoteStackTrace, nameof(MapBlockTargets.ThrowAt));

        // Through Imap the items before it arrive, each with its own value; the pool serves on.
        var seen = new List<int>();
        var inImap = Assert.ThrowsExactly<ShmRemoteException>(() =>
        {
            foreach (int r in pool.Imap(MapBlockTargets.ThrowAt, items, chunkSize: 50_000))
            {
                seen.Add(r);
            }
        });
        Assert.AreEqual($"item {MapBlockTargets.FailingItem} refused", inImap.RemoteMessage);
        CollectionAssert.AreEqual(items.Take(MapBlockTargets.FailingItem).ToArray(), seen);
        CollectionAssert.AreEqual(items.Select(MapBlockTargets.Triple).ToArray(), pool.Map(MapBlockTargets.Triple, items));
    }

    [TestMethod]
    public void A_block_map_on_a_closed_pool_throws_and_queues_nothing()
    {
        ShmPool pool = NewPool(1);
        Assert.AreEqual(3, pool.Map(MapBlockTargets.Triple, [1])[0]);
        pool.Close();
        Assert.ThrowsExactly<InvalidOperationException>(() => pool.Map(MapBlockTargets.Triple, Enumerable.Range(0, 300_000).ToArray(), chunkSize: 10_000));
        Assert.IsTrue(pool.Join(Deadline), "the closed pool ends: nothing of the refused Map was queued");
    }
}

/// <summary>The functions <see cref="MapBlockTests"/> maps (static: their workers load this assembly).</summary>
internal static class MapBlockTargets
{
    public const int FailingItem = 431_017;

    public static int Triple(int x) => x * 3;

    public static long Widen(int x) => ((long)x << 20) + x;

    public static double TwiceAndOne(double x) => (x * 2) + 1;

    public static int ThrowAt(int x) => x == FailingItem ? throw new ArgumentException($"item {x} refused") : x;
}
