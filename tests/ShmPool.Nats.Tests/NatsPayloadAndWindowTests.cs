using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.ObjectStore;

namespace ShmIpc.Nats.Tests;

/// <summary>
/// An argument or a result larger than the server's max payload (nats-server's default, 1 MiB) crosses through the
/// pool's object store, which is left empty; Imap keeps a bounded window of tasks out over an endless input.
/// </summary>
[TestClass]
public sealed class NatsPayloadAndWindowTests
{
    private const int ThreeMegabytes = 3 * 1024 * 1024;

    private static NatsServer s_server = null!;

    [ClassInitialize]
    public static void StartServer(TestContext context) => s_server = NatsServer.Start();

    [ClassCleanup]
    public static void StopServer() => s_server?.Dispose();

    [TestMethod]
    public void A_3_MB_argument_and_a_3_MB_result_cross_a_1_MB_max_payload_and_leave_no_object_behind()
    {
        string name = Wait.NewPoolName("large");
        using var workers = new WorkerProcesses();
        using var pool = new NatsPool(new NatsPoolOptions { Url = s_server.Url, PoolName = name });
        workers.Start(s_server.Url, name);
        Assert.AreEqual(1024 * 1024, ServerMaxPayload(), "the server's max payload is nats-server's default 1 MiB");

        string big = string.Create(ThreeMegabytes, 0, static (span, _) =>
        {
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = (char)('a' + (i % 26));
            }
        });
        Assert.AreEqual(big, pool.Apply(TestFunctions.Echo, big, TimeSpan.FromSeconds(60)), "3 MB there and 3 MB back");
        Assert.AreEqual(ThreeMegabytes, pool.Apply(TestFunctions.LengthOf, big, TimeSpan.FromSeconds(60)), "3 MB argument, small result");
        Assert.AreEqual(ThreeMegabytes, pool.Apply(TestFunctions.Letters, ThreeMegabytes, TimeSpan.FromSeconds(60)).Length, "small argument, 3 MB result");
        CollectionAssert.AreEqual(new[] { big.Length, 5, 2 * 1024 * 1024 },
            pool.Map(TestFunctions.LengthOf, [big, "small", big[..(2 * 1024 * 1024)]], chunkSize: 3), "a chunk too large is split, and its large item goes alone");

        Wait.Until(() => LiveObjects("shmpool_" + name) == 0, "every object of the pool is deleted once read");
    }

    [TestMethod]
    public void Imap_over_an_endless_input_keeps_at_most_its_window_of_tasks_out_while_results_are_unread()
    {
        const int Window = 8;
        string name = Wait.NewPoolName("window");
        using var workers = new WorkerProcesses();
        using var pool = new NatsPool(new NatsPoolOptions { Url = s_server.Url, PoolName = name, ImapWindow = Window });
        workers.Start(s_server.Url, name);
        workers.Start(s_server.Url, name);
        Wait.Until(() => pool.Workers.Count == 2, "both workers are up");

        foreach (bool ordered in (bool[])[true, false])
        {
            var input = new CountingInput();
            IEnumerable<int> results = ordered ? pool.Imap(TestFunctions.Square, input.Endless()) : pool.ImapUnordered(TestFunctions.Square, input.Endless());
            Assert.AreEqual(0, input.Pulled, "nothing is read before the results are");
            long doneBefore = pool.Workers.Sum(static w => w.TasksDone);
            using (IEnumerator<int> reader = results.GetEnumerator())
            {
                var got = new List<int>();
                for (int i = 0; i < 5; i++)
                {
                    Assert.IsTrue(reader.MoveNext());
                    got.Add(reader.Current);
                }

                // The workers finish every task sent (one per item read); no more input is read while the results stay unread.
                int pulled = input.Pulled;
                Assert.IsTrue(pulled <= 5 + Window, $"read {pulled} items with 5 results read and a window of {Window}");
                Wait.Until(() => pool.Workers.Sum(static w => w.TasksDone) >= doneBefore + pulled, "the window's tasks are done");
                Assert.AreEqual(pulled, input.Pulled, "no input is read while the results stay unread");
                if (ordered)
                {
                    CollectionAssert.AreEqual(new[] { 0, 1, 4, 9, 16 }, got);
                }

                for (int i = 0; i < 200; i++)
                {
                    Assert.IsTrue(reader.MoveNext());
                    got.Add(reader.Current);
                }

                Assert.IsTrue(input.Pulled <= 205 + Window, $"read {input.Pulled} items with 205 results read and a window of {Window}");
                if (ordered)
                {
                    CollectionAssert.AreEqual(Enumerable.Range(0, 205).Select(static x => x * x).ToArray(), got.ToArray(), "in input order");
                }
                else
                {
                    // As they come: 205 distinct results, each of an item read.
                    var read = Enumerable.Range(0, input.Pulled).Select(static x => x * x).ToHashSet();
                    Assert.AreEqual(205, got.Distinct().Count(), "each item once");
                    Assert.IsTrue(got.All(read.Contains), "every result is of an item read");
                }
            }
        }
    }

    private static long ServerMaxPayload()
    {
        var connection = new NatsConnection(new NatsOpts { Url = s_server.Url });
        try
        {
            connection.ConnectAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
            return connection.ServerInfo!.MaxPayload;
        }
        finally
        {
            connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>Objects in the bucket not deleted.</summary>
    private static int LiveObjects(string bucket)
    {
        var connection = new NatsConnection(new NatsOpts { Url = s_server.Url });
        try
        {
            return CountAsync().GetAwaiter().GetResult();
        }
        finally
        {
            connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        }

        async Task<int> CountAsync()
        {
            INatsObjStore store = await new NatsObjContext(new NatsJSContext(connection)).GetObjectStoreAsync(bucket);
            int count = 0;
            try
            {
                await foreach (var _ in store.ListAsync())
                {
                    count++;
                }
            }
            catch (NatsObjNotFoundException)
            {
                // No objects at all.
            }

            return count;
        }
    }

    /// <summary>An endless input that counts how far it was read.</summary>
    private sealed class CountingInput
    {
        private int _pulled;

        public int Pulled => Volatile.Read(ref _pulled);

        public IEnumerable<int> Endless()
        {
            for (int i = 0; ; i++)
            {
                Interlocked.Increment(ref _pulled);
                yield return i;
            }
        }
    }
}
