namespace ShmIpc.Pool.Tests;

[TestClass]
public sealed class ShmPoolTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;


    [TestMethod]
    public void Apply_runs_in_a_worker_and_returns()
    {
        ShmPool pool = NewPool();
        Assert.AreEqual(2, pool.ProcessCount);
        Assert.AreEqual(49, pool.Apply(TestFunctions.Square, 7));
        int pid = pool.Apply(TestFunctions.Pid, 0);
        CollectionAssert.Contains(pool.WorkerPids.ToArray(), pid);
        Assert.AreNotEqual(Environment.ProcessId, pid);
    }

    [TestMethod]
    public async Task ApplyAsync_gives_a_result_to_get_wait_and_await()
    {
        ShmPool pool = NewPool();
        ShmAsyncResult<int> result = pool.ApplyAsync(TestFunctions.Square, 9);
        Assert.IsTrue(result.Wait(Deadline));
        Assert.IsTrue(result.IsReady);
        Assert.IsTrue(result.IsSuccessful);
        Assert.AreEqual(81, result.Get(Deadline));
        Assert.AreEqual(16, await pool.ApplyAsync(TestFunctions.Square, 4).Task.WaitAsync(Deadline));
        Invoice invoice = pool.ApplyAsync(TestFunctions.Bill, new Order(1, "Bob", [1m, 2m])).Get(Deadline);
        Assert.AreEqual(new Invoice(1, 3m, "for Bob"), invoice);
    }

    [TestMethod]
    public void Unmanaged_structs_cross_as_bytes()
    {
        ShmPool pool = NewPool(1);
        Vec3 v = pool.Apply(TestFunctions.Scale, new Vec3 { X = 1, Y = 2, Z = 3 });
        Assert.AreEqual((2.0, 4.0, 6.0), (v.X, v.Y, v.Z));
        Assert.AreEqual(DayOfWeek.Sunday, pool.Apply(TestFunctions.Tomorrow, DayOfWeek.Saturday));
        Vec3 spread = pool.Map(TestFunctions.Spread, [3.0], chunkSize: 1)[0];
        Assert.AreEqual((3.0, -3.0, 9.0), (spread.X, spread.Y, spread.Z));

        // Nullable values are not raw bytes (the serializer hands them to MessagePack): the fast path leaves them alone.
        Assert.AreEqual(4, pool.Apply(TestFunctions.Half, (int?)8));
        Assert.IsNull(pool.Apply(TestFunctions.Half, (int?)7));
        Assert.IsNull(pool.Apply<int?, int?>(TestFunctions.Half, null));
    }

    [TestMethod]
    public void Map_over_100k_items_equals_a_sequential_run()
    {
        ShmPool pool = NewPool();
        int[] items = Enumerable.Range(-50_000, 100_000).ToArray();
        int[] expected = items.Select(TestFunctions.Square).ToArray();
        CollectionAssert.AreEqual(expected, pool.Map(TestFunctions.Square, items));
        CollectionAssert.AreEqual(expected, pool.MapAsync(TestFunctions.Square, items, chunkSize: 5_000).Get(Deadline));
        CollectionAssert.AreEqual(Array.Empty<int>(), pool.Map(TestFunctions.Square, Array.Empty<int>()));
    }

    [TestMethod]
    public void Map_in_large_block_chunks_sends_the_items_as_they_were_when_called()
    {
        // Chunks of ints around 16 KiB go straight into pooled arrays (reused from Map to Map): every chunk carries its
        // own items, copied when MapAsync returns, whatever the caller writes into its array afterwards.
        ShmPool pool = NewPool(2);
        foreach (int chunkSize in new[] { 4_090, 4_091, 4_092, 20_000 })
        {
            for (int round = 0; round < 2; round++)
            {
                int[] items = Enumerable.Range(round * 1_000, 50_000).ToArray();
                int[] expected = items.Select(TestFunctions.Square).ToArray();
                ShmAsyncResult<int[]> pending = pool.MapAsync(TestFunctions.Square, items, chunkSize);
                Array.Fill(items, -1);
                CollectionAssert.AreEqual(expected, pending.Get(Deadline), $"chunk size {chunkSize}, round {round}");
            }
        }
    }

    [TestMethod]
    public void Map_reads_arrays_lists_and_lazy_sequences_alike()
    {
        // Arrays and lists are encoded in place, anything else is read once; results go straight into the result array.
        ShmPool pool = NewPool();
        int[] array = Enumerable.Range(0, 50_000).ToArray();
        int[] expected = array.Select(TestFunctions.Square).ToArray();
        CollectionAssert.AreEqual(expected, pool.Map(TestFunctions.Square, array, chunkSize: 7_000));
        CollectionAssert.AreEqual(expected, pool.Map(TestFunctions.Square, new List<int>(array), chunkSize: 7_000));
        CollectionAssert.AreEqual(expected, pool.Map(TestFunctions.Square, Enumerable.Range(0, 50_000), chunkSize: 7_000));
        CollectionAssert.AreEqual(new[] { 9 }, pool.Map(TestFunctions.Square, new List<int> { 3 }));
    }

    [TestMethod]
    public void Starmap_spreads_pairs_and_triples_over_the_parameters()
    {
        ShmPool pool = NewPool();
        (int, long)[] pairs = [(1, 10L), (2, 20L), (3, 30L)];
        CollectionAssert.AreEqual(new long[] { 11, 22, 33 }, pool.Starmap(TestFunctions.Add, pairs));
        (string, int, double)[] triples = [("a", 1, 0.5), ("b", 2, 1.5)];
        CollectionAssert.AreEqual(new[] { "a|1|0.5", "b|2|1.5" }, pool.Starmap(TestFunctions.Join3, triples, chunkSize: 1));
    }

    [TestMethod]
    public void Imap_yields_in_input_order_while_reading_its_input_lazily()
    {
        ShmPool pool = NewPool();
        int read = 0;
        IEnumerable<int> Input()
        {
            for (int i = 0; i < 10_000; i++)
            {
                read = i + 1;
                yield return i;
            }
        }

        using IEnumerator<int> results = pool.Imap(TestFunctions.Square, Input(), chunkSize: 10).GetEnumerator();
        Assert.IsTrue(results.MoveNext());
        Assert.AreEqual(0, results.Current);
        Assert.IsTrue(read < 10_000, $"the first result came after reading {read} items: not lazy");
        var all = new List<int> { results.Current };
        while (results.MoveNext())
        {
            all.Add(results.Current);
        }

        CollectionAssert.AreEqual(Enumerable.Range(0, 10_000).Select(TestFunctions.Square).ToArray(), all);
    }

    [TestMethod]
    public void ImapUnordered_yields_every_result_once()
    {
        ShmPool pool = NewPool();
        int[] results = pool.ImapUnordered(TestFunctions.Square, Enumerable.Range(0, 1_000), chunkSize: 7).ToArray();
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 1_000).Select(TestFunctions.Square).ToArray(), results);
    }

    [TestMethod]
    public async Task ImapAsync_and_ImapUnorderedAsync_stream_the_results()
    {
        ShmPool pool = NewPool();
        var ordered = new List<int>();
        await foreach (int r in pool.ImapAsync(TestFunctions.Square, Enumerable.Range(0, 500), chunkSize: 3))
        {
            ordered.Add(r);
        }

        CollectionAssert.AreEqual(Enumerable.Range(0, 500).Select(TestFunctions.Square).ToArray(), ordered);
        var unordered = new List<int>();
        await foreach (int r in pool.ImapUnorderedAsync(TestFunctions.Square, Enumerable.Range(0, 500)))
        {
            unordered.Add(r);
        }

        CollectionAssert.AreEquivalent(ordered, unordered);
    }

    [TestMethod]
    public void A_thread_s_reused_Apply_carries_nothing_over_from_its_previous_call()
    {
        // A synchronous Apply reuses its thread's chunk (message buffer, outcome) per result type.
        ShmPool pool = NewPool(1);
        for (int i = 0; i < 3; i++)
        {
            Assert.ThrowsExactly<ShmRemoteException>(() => pool.Apply(TestFunctions.ThrowIfThirteen, 13));
            Assert.AreEqual(144, pool.Apply(TestFunctions.ThrowIfThirteen, 12));
            Assert.AreEqual(new Vec3 { X = 4, Y = -4, Z = 16 }, pool.Apply(TestFunctions.Spread, 4.0));
            Assert.IsNull(pool.Apply<int?, int?>(TestFunctions.Half, 3));
            Assert.AreEqual(2, pool.Apply<int?, int?>(TestFunctions.Half, 4));
            Assert.AreEqual(49, pool.Apply(TestFunctions.Square, 7));
        }

        // Each thread has its own: concurrent callers' results never mix.
        Parallel.For(0, 4, t =>
        {
            for (int i = 0; i < 500; i++)
            {
                Assert.AreEqual((t * 1000 + i) * (t * 1000 + i), pool.Apply(TestFunctions.Square, t * 1000 + i));
            }
        });
    }

    [TestMethod]
    public void Messages_longer_than_the_reused_receive_buffers_go_through()
    {
        // Both ends receive into a buffer that starts small, grows, and stops growing at ChildChannel.MaxReceiveBuffer.
        ShmPool pool = NewPool(1);
        int[] items = Enumerable.Range(0, 300_000).ToArray();
        foreach (int chunkSize in new[] { 3_000, 150_000, 3_000, 150_000 })
        {
            int[] results = pool.Map(TestFunctions.Square, items, chunkSize);
            Assert.AreEqual(items.Length, results.Length);
            Assert.AreEqual(unchecked(299_999 * 299_999), results[^1]);
            Assert.AreEqual(1_000 * 1_000, results[1_000]);
            Assert.AreEqual(36, pool.Apply(TestFunctions.Square, 6));
        }

        string[] words = Enumerable.Range(0, 20_000).Select(static i => $"word {i}").ToArray();
        string[] joined = pool.Starmap(TestFunctions.Join3, words.Select(static (w, i) => (w, i, 1.0)), chunkSize: 10_000);
        Assert.AreEqual("word 19999|19999|1", joined[^1]);
    }

    [TestMethod]
    public void An_exception_in_the_function_fails_that_task_only_and_the_worker_lives_on()
    {
        ShmPool pool = NewPool(1);
        int before = pool.Apply(TestFunctions.Pid, 0);
        var e = Assert.ThrowsExactly<ShmRemoteException>(() => pool.Apply(TestFunctions.ThrowIfThirteen, 13));
        Assert.AreEqual("System.ArgumentException", e.RemoteType);
        Assert.AreEqual("thirteen is unlucky", e.RemoteMessage);
        StringAssert.Contains(e.RemoteStackTrace, nameof(TestFunctions.ThrowIfThirteen));
        Assert.AreEqual(before, pool.Apply(TestFunctions.Pid, 0));
        Assert.ThrowsExactly<ShmRemoteException>(() => pool.Map(TestFunctions.ThrowIfThirteen, Enumerable.Range(0, 20)));
        CollectionAssert.AreEqual(new[] { 144, 196 }, pool.Imap(TestFunctions.ThrowIfThirteen, [12, 14]).ToArray());

        // Ints in and out travel as one block per chunk: a failure in the middle of a block fails that item only.
        var seen = new List<int>();
        var inBlock = Assert.ThrowsExactly<ShmRemoteException>(() =>
        {
            foreach (int r in pool.Imap(TestFunctions.ThrowIfThirteen, Enumerable.Range(10, 10), chunkSize: 10))
            {
                seen.Add(r);
            }
        });
        Assert.AreEqual("thirteen is unlucky", inBlock.RemoteMessage);
        CollectionAssert.AreEqual(new[] { 100, 121, 144 }, seen);
        Assert.AreEqual(before, pool.Apply(TestFunctions.Pid, 0));
    }

    [TestMethod]
    public void Map_reports_the_first_failure_in_input_order_whatever_order_the_chunks_end_in()
    {
        ShmPool pool = NewPool(2);
        var e = Assert.ThrowsExactly<ShmRemoteException>(() => pool.Map(TestFunctions.ThrowOnTwo, Enumerable.Range(0, 10_000), chunkSize: 1_000));
        Assert.AreEqual("item 13", e.RemoteMessage);
        CollectionAssert.AreEqual(new[] { 0, 1, 4 }, pool.Map(TestFunctions.ThrowOnTwo, [0, 1, 2]), "the pool serves on");
    }

    [TestMethod]
    public void A_Map_fails_as_soon_as_its_first_failure_in_input_order_is_known()
    {
        // Item 0 fails at once; item 3 never ends. The Map reports item 0 without waiting for item 3.
        ShmPool pool = NewPool(2);
        string pidFile = TestSupport.TempFile("map-block");
        try
        {
            var items = Enumerable.Range(0, 4).Select(i => (i, pidFile)).ToArray();
            ShmAsyncResult<int[]> map = pool.MapAsync(TestFunctions.ThrowFirstBlockLater, items, chunkSize: 1);
            Assert.IsTrue(map.Wait(Deadline), "the Map ended while item 3 still runs");
            var e = Assert.ThrowsExactly<ShmRemoteException>(() => map.Get(TimeSpan.Zero));
            Assert.AreEqual("item 0", e.RemoteMessage);
        }
        finally
        {
            pool.Terminate();
            File.Delete(pidFile);
        }
    }

    [TestMethod]
    public void A_reader_stops_spinning_when_its_spins_go_unrewarded_and_probes_less_and_less_often()
    {
        var spin = new ShmIpc.Pool.ReaderSpin(TimeSpan.FromMicroseconds(50));
        long quick = System.Diagnostics.Stopwatch.Frequency / 1_000_000; // 1 us
        long slow = System.Diagnostics.Stopwatch.Frequency / 1_000; // 1 ms
        for (int i = 0; i < 4; i++)
        {
            Assert.IsTrue(spin.ShouldSpin, $"spins while results come quickly or misses are few ({i})");
            spin.Observe(spun: true, slow);
        }

        // Probes after 16, 32, 64, 128 and 256 receives (each missed probe halves the rate), then one in 256.
        int Spins(int receives, long waited)
        {
            int spins = 0;
            for (int i = 0; i < receives; i++)
            {
                bool should = spin.ShouldSpin;
                spins += should ? 1 : 0;
                spin.Observe(should, waited);
            }

            return spins;
        }

        Assert.AreEqual(1, Spins(16, slow), "the first probe comes 16 receives after four wasted spins");
        Assert.AreEqual(4, Spins(32 + 64 + 128 + 256, slow), "each missed probe halves the probing rate");
        Assert.AreEqual(2, Spins(512, slow), "down to one probe in 256 receives");
        spin.Observe(spun: false, quick);
        Assert.IsFalse(spin.ShouldSpin, "a receive that did not spin proves nothing");
        while (!spin.ShouldSpin)
        {
        }

        spin.Observe(spun: true, quick);
        Assert.IsTrue(spin.ShouldSpin && spin.ShouldSpin, "a probe that found its result within the spin brings spinning back");
        for (int i = 0; i < 4; i++)
        {
            spin.Observe(spun: true, slow);
        }

        Assert.AreEqual(1, Spins(16, slow), "and the probing rate starts again from one in 16");
    }

    [TestMethod]
    public void A_closure_is_rejected_with_the_documented_message()
    {
        ShmPool pool = NewPool(1);
        int offset = 3;
        var e = Assert.ThrowsExactly<ArgumentException>(() => pool.Map(x => x + offset, [1, 2]));
        StringAssert.Contains(e.Message, "offset");
        StringAssert.Contains(e.Message, "captures variables");
        StringAssert.Contains(e.Message, "Make it a static method");
        Assert.AreEqual(4, pool.Apply(static x => x + 1, 3));
    }

    [TestMethod]
    public void The_initializer_runs_once_in_each_worker()
    {
        ShmPool pool = NewPool(2, new ShmPoolOptions { Initializer = TestFunctions.Initialize });
        (int Pid, int Initialized)[] states = pool.Map(TestFunctions.InitState, Enumerable.Range(0, 200), chunkSize: 1);
        Assert.IsTrue(states.All(s => s.Initialized == 1), string.Join(", ", states.Distinct()));
        Assert.IsTrue(states.Select(s => s.Pid).Distinct().Count() is >= 1 and <= 2);
    }

    [TestMethod]
    public void MaxTasksPerWorker_replaces_workers_with_fresh_processes()
    {
        ShmPool pool = NewPool(2, new ShmPoolOptions { MaxTasksPerWorker = 3 });
        int[] pids = pool.Map(TestFunctions.Pid, Enumerable.Range(0, 24), chunkSize: 1);
        Children.Track(pids);
        Assert.IsTrue(pids.Distinct().Count() >= 8, $"{pids.Distinct().Count()} distinct workers for 24 tasks at 3 per worker");
        Assert.IsTrue(pids.GroupBy(p => p).All(g => g.Count() <= 3));
        Assert.AreEqual(25, pool.Apply(TestFunctions.Square, 5));
    }
}
