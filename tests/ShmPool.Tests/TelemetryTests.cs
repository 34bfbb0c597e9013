using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ShmIpc.Pool.Tests;

/// <summary>The meter and activity source named "ShmIpc": what an operator sees, checked with real listeners.</summary>
[TestClass]
public sealed class TelemetryTests : PoolTestBase
{
    /// <summary>Sums each long instrument's measurements, per instrument and destination.</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, long> _sums = new();

        public Recorder()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == ShmTelemetry.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument.Name, value, tags));
            _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument.Name, 1, tags));
            _listener.Start();
        }

        private void Add(string instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string destination = "";
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "messaging.destination.name")
                {
                    destination = (string)tag.Value!;
                }
            }

            lock (_sums)
            {
                foreach (string key in new[] { instrument, $"{instrument}/{destination}" })
                {
                    _sums[key] = _sums.GetValueOrDefault(key) + value;
                }
            }
        }

        public long this[string key]
        {
            get
            {
                lock (_sums)
                {
                    return _sums.GetValueOrDefault(key);
                }
            }
        }

        public void Observe() => _listener.RecordObservableInstruments();

        public void Dispose() => _listener.Dispose();
    }

    [TestMethod]
    public void A_queue_reports_messages_bytes_depth_and_sleeps()
    {
        using var recorder = new Recorder();
        string name = $"t{Environment.ProcessId}-metrics-{Guid.NewGuid():N}";
        using var queue = ShmQueue.Create(name);
        queue.Enqueue(new byte[10]);
        queue.Enqueue(new byte[20]);
        queue.Enqueue(new byte[30]);
        recorder.Observe();
        Assert.AreEqual(3, recorder[$"shmipc.queue.depth/{name}"], "the depth gauge");
        _ = queue.Dequeue();
        _ = queue.Dequeue();
        Assert.AreEqual(3, recorder[$"messaging.client.sent.messages/{name}"]);
        Assert.AreEqual(60, recorder[$"shmipc.sent.bytes/{name}"]);
        Assert.AreEqual(2, recorder[$"messaging.client.consumed.messages/{name}"]);
        Assert.AreEqual(30, recorder[$"shmipc.consumed.bytes/{name}"]);

        _ = queue.Dequeue();
        long slept = recorder["shmipc.waits.slept"];
        Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(300)), "empty");
        Assert.IsTrue(recorder["shmipc.waits.slept"] > slept, "a wait past the spin sleeps, and says so");
    }

    [TestMethod]
    public void A_pipe_reports_messages_and_bytes_both_ways()
    {
        using var recorder = new Recorder();
        string name = $"t{Environment.ProcessId}-pmetrics-{Guid.NewGuid():N}";
        using ShmConnection a = ShmPipe.Create(name);
        using ShmConnection b = ShmPipe.Connect(name);
        a.Send(new byte[8]);
        a.SendDeferred(new byte[16]);
        a.Flush();
        _ = b.Receive();
        Assert.AreEqual(16, b.ReceiveInto(new byte[64]));
        Assert.AreEqual(2, recorder[$"messaging.client.sent.messages/{name}"]);
        Assert.AreEqual(24, recorder[$"shmipc.sent.bytes/{name}"]);
        Assert.AreEqual(2, recorder[$"messaging.client.consumed.messages/{name}"]);
        Assert.AreEqual(24, recorder[$"shmipc.consumed.bytes/{name}"]);
    }

    [TestMethod]
    public void A_pool_reports_its_tasks_and_a_worker_replaced_after_a_crash()
    {
        using var recorder = new Recorder();
        ShmPool pool = NewPool(1, new ShmPoolOptions { TaskRetries = 1 });
        Assert.AreEqual(49, pool.Apply(TestFunctions.Square, 7));
        _ = pool.Map(TestFunctions.Square, Enumerable.Range(0, 100), chunkSize: 10);
        Assert.ThrowsExactly<ShmRemoteException>(() => pool.Apply(TestFunctions.Throw, "no"));
        Assert.AreEqual(12, recorder["shmipc.pool.tasks.started"]);
        Assert.AreEqual(11, recorder["shmipc.pool.tasks.completed"]);
        Assert.AreEqual(1, recorder["shmipc.pool.tasks.failed"]);
        Assert.AreEqual(12, recorder["shmipc.pool.task.duration"], "one duration per task");

        int victim = pool.WorkerPids.Single();
        Assert.ThrowsExactly<ShmWorkerCrashedException>(() => pool.Apply(TestFunctions.ExitWith, 3));
        Children.Track(victim);
        Assert.AreEqual(2, recorder["shmipc.pool.tasks.crashed"], "crashed once, retried, crashed again");
        Assert.AreEqual(1, recorder["shmipc.pool.tasks.retried"]);
        TestSupport.WaitUntil(() => recorder["shmipc.pool.workers.replaced"] >= 2, "the dead workers were replaced");
    }

    [TestMethod]
    public void A_pool_task_is_a_span_whose_trace_crosses_into_the_worker()
    {
        var finished = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = static source => source.Name == ShmTelemetry.MeterName,
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                lock (finished)
                {
                    finished.Add(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var app = new ActivitySource("TelemetryTests.App");
        using var appListener = new ActivityListener
        {
            ShouldListenTo = static source => source.Name == "TelemetryTests.App",
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(appListener);

        ShmPool pool = NewPool(1, ShmPoolOptions.Default with { Initializer = TestFunctions.ListenToShmIpcActivities });
        (string? Name, string? ParentId) inWorker;
        using (Activity request = app.StartActivity("request")!)
        {
            inWorker = pool.Apply(TestFunctions.CurrentSpan, 0);
            Assert.AreSame(request, Activity.Current, "the caller's current activity is left as it was");
        }

        Activity task;
        lock (finished)
        {
            task = finished.Single(static a => a.OperationName == "shmipc.pool.task");
        }

        Assert.AreEqual("shmipc.pool.task", inWorker.Name);
        Assert.AreEqual(task.Id, inWorker.ParentId, "the worker's span is a child of the caller's task span");
        Assert.IsNotNull(task.ParentId, "the task span is a child of the caller's request");
    }
}
