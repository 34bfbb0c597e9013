using ShmIpc.TestHost;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// A shared object in a task's argument is opened by the worker for that item and closed after it: a long Map that passes
/// the same array with every item keeps the worker's mappings bounded instead of adding one per item (until
/// vm.max_map_count, 65,530, stops the worker).
/// </summary>
[TestClass]
public sealed class WorkerMappingTests : PoolTestBase
{
    [TestMethod]
    public void A_long_Starmap_passing_one_array_with_every_item_keeps_the_workers_mappings_bounded()
    {
        const int Items = 2_000;

        // Without closing, each item leaves at least one mapping behind (the array's segment), so a worker that runs n items
        // grows by n or more; the runtime's own new mappings (GC heap, JIT) over the run are a few dozen. Which worker runs
        // how many items is up to the pool, so the bound is far below the items any one worker must run (>= Items / 2).
        const int Bound = 400;
        ShmPool pool = NewPool();
        using ShmArray<int> array = ShmArray<int>.Create(TestSupport.ShmName("mapcount"), 16);

        (int Pid, int Mappings)[] seen = pool.Starmap(MappingTargets.ReadSlotAndCountMappings,
            Enumerable.Range(0, Items).Select(i => (array, i)), chunkSize: 20);

        Assert.AreEqual(Items, seen.Length);
        foreach (IGrouping<int, (int Pid, int Mappings)> worker in seen.GroupBy(static s => s.Pid))
        {
            int growth = worker.Max(static s => s.Mappings) - worker.Min(static s => s.Mappings);
            Assert.IsTrue(growth < Bound, $"worker {worker.Key} ran {worker.Count()} items and its mappings grew by {growth} " +
                $"(from {worker.Min(static s => s.Mappings)}): what the deserializer opened was not closed");
        }
    }
}
