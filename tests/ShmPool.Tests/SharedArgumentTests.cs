using ShmIpc.TestHost;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// ShmSharedMemory, ShmArray and ShmValue passed to Apply, Map, Starmap and ShmProcess.Start arrive open in the worker, on
/// the same memory: what the worker writes, the caller reads (a copy would leave the caller's elements as they were).
/// </summary>
[TestClass]
public sealed class SharedArgumentTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    [TestMethod]
    public void An_array_passed_to_Apply_is_the_callers_memory()
    {
        ShmPool pool = NewPool();
        using ShmArray<int> array = ShmArray<int>.Create(TestSupport.ShmName("sharedarg-a"), 100_000);
        Assert.AreEqual(array.Length, pool.Apply(InPlaceTargets.Fill, (array, 42)));
        Assert.IsTrue(array.AsSpan().ToArray().All(static v => v == 42), "the worker's writes are in the caller's array");
    }

    [TestMethod]
    public void An_array_passed_to_Starmap_is_shared_by_every_item()
    {
        ShmPool pool = NewPool();
        using ShmArray<int> array = ShmArray<int>.Create(TestSupport.ShmName("sharedarg-s"), 64);
        for (int i = 0; i < array.Length; i++)
        {
            array[i] = i;
        }

        int[] old = pool.Starmap(InPlaceTargets.SquareSlot, Enumerable.Range(0, array.Length).Select(i => (array, i)), chunkSize: 5);

        CollectionAssert.AreEqual(Enumerable.Range(0, 64).ToArray(), old);
        CollectionAssert.AreEqual(Enumerable.Range(0, 64).Select(static i => i * i).ToArray(), array.AsSpan().ToArray());
    }

    [TestMethod]
    public void Shared_memory_segments_passed_to_Map_arrive_open()
    {
        ShmPool pool = NewPool();
        ShmSharedMemory[] segments = Enumerable.Range(1, 6).Select(i => ShmSharedMemory.Create(TestSupport.ShmName($"sharedarg-m{i}"), 4096 * i)).ToArray();
        try
        {
            foreach (ShmSharedMemory segment in segments)
            {
                segment.Span.Fill(1);
            }

            long[] sums = pool.Map(InPlaceTargets.StampSize, segments, chunkSize: 1);

            CollectionAssert.AreEqual(segments.Select(static s => s.Size - 8).ToArray(), sums, "the worker read the caller's bytes");
            foreach (ShmSharedMemory segment in segments)
            {
                Assert.AreEqual(segment.Size, BitConverter.ToInt64(segment.Span), $"the worker's stamp is in {segment.Name}");
            }
        }
        finally
        {
            foreach (ShmSharedMemory segment in segments)
            {
                segment.Dispose();
            }
        }
    }

    [TestMethod]
    public void A_value_passed_to_Apply_from_many_tasks_adds_up()
    {
        ShmPool pool = NewPool();
        using ShmValue<long> value = ShmValue<long>.Create(TestSupport.ShmName("sharedarg-v"));
        ShmAsyncResult<long>[] adds = Enumerable.Range(1, 50).Select(i => pool.ApplyAsync(InPlaceTargets.AddTo, (value, (long)i))).ToArray();
        foreach (ShmAsyncResult<long> add in adds)
        {
            _ = add.Get(Deadline);
        }

        Assert.AreEqual(50L * 51 / 2, value.Value);
    }

    [TestMethod]
    public void An_array_and_a_value_passed_to_ShmProcess_Start_arrive_open()
    {
        using ShmArray<int> array = ShmArray<int>.Create(TestSupport.ShmName("sharedarg-pa"), 1_000);
        using ShmProcess<int> fill = Track(ShmProcess.Start<(ShmArray<int>, int), int>(InPlaceTargets.Fill, (array, 7)));
        Assert.AreEqual(1_000, fill.GetResult(Deadline));
        Assert.IsTrue(array.AsSpan().ToArray().All(static v => v == 7));

        using ShmValue<long> value = ShmValue<long>.Create(TestSupport.ShmName("sharedarg-pv"), 10);
        using ShmProcess<long> add = Track(ShmProcess.Start<(ShmValue<long>, long), long>(InPlaceTargets.AddTo, (value, 5)));
        Assert.AreEqual(15L, add.GetResult(Deadline));
        Assert.AreEqual(15L, value.Value);
    }
}
