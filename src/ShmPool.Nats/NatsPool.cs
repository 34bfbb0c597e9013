using System.Collections.Concurrent;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using ShmIpc.Hosting;
using ShmIpc.Nats.Internal;
using ShmIpc.Protocol;

namespace ShmIpc.Nats;

/// <summary>
/// The <see cref="IShmPool"/> across hosts: tasks go through a NATS JetStream work queue to every worker process that
/// serves the pool's name (<see cref="NatsWorker.Run"/>), wherever it runs. The API and the fault rules are those of
/// <see cref="ShmPool"/>.
/// </summary>
/// <remarks>
/// <para>Tasks are durable and acknowledged: the server stores each (file-backed) until a worker has published its
/// results; a worker killed mid-task stops its heartbeat and the task goes to another worker after
/// <see cref="NatsPoolOptions.HeartbeatTimeout"/>; after <see cref="NatsPoolOptions.TaskRetries"/> such losses the call
/// fails with <see cref="ShmWorkerCrashedException"/>. A slow but live worker keeps its task. With no worker alive, a
/// task fails after <see cref="NatsPoolOptions.NoWorkerTimeout"/> with a <see cref="TimeoutException"/> naming the pool
/// and the server. A server restart or a cluster fail-over is ridden out: the client reconnects and both sides retry.</para>
/// <para>Results are at-least-once underneath (a worker that dies between publishing its results and acknowledging the
/// task has it run again) and exactly-once to the caller: the first result of a task is kept, a second dropped.</para>
/// </remarks>
public sealed partial class NatsPool : IShmPool
{
    private const int StateOpen = 0;
    private const int StateClosed = 1;
    private const int StateTerminated = 2;

    /// <summary>A worker counts as alive for this long after its last heartbeat (it sends one a second).</summary>
    private static readonly TimeSpan s_workerLapse = TimeSpan.FromSeconds(3);

    private readonly NatsPoolOptions _options;
    private readonly PoolSubjects _subjects;
    private readonly NatsConnection _connection;
    private readonly NatsJSContext _js;
    private readonly PoolBlobs _blobs;
    private readonly string _callerId = Guid.NewGuid().ToString("N")[..16];
    private readonly IShmObjectSerializer _serializer;
    private readonly string _serializerName;
    private readonly ConcurrentDictionary<long, PendingTask> _pending = new();
    private readonly ConcurrentDictionary<ulong, long> _bySequence = new();
    private readonly ConcurrentDictionary<string, (NatsWorkerInfo Info, long SeenTicks)> _workers = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly List<ShmProcess> _localWorkers = [];
    private readonly Timer _monitor;
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _nextTask;
    private long _lastWorkerSeenTicks;
    private int _state;
    private int _shutDown;

    /// <summary>Connects to the server, creates the pool's queue if it is the first of its name, and starts <see cref="NatsPoolOptions.LocalWorkers"/> local workers.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="IOException">The server cannot be reached, or has no JetStream.</exception>
    public NatsPool(NatsPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _subjects = new PoolSubjects(options.PoolName);
        _serializer = options.Serializer ?? ShmMessagePackSerializer.Instance;
        _serializerName = SerializerFactory.Describe(_serializer, nameof(options));
        _connection = NatsConnect.ConnectAsync(options.Url, $"NATS pool '{options.PoolName}'", options.ConnectTimeout, CancellationToken.None).GetAwaiter().GetResult();
        _js = new NatsJSContext(_connection);
        _blobs = new PoolBlobs(_js, options.PoolName, _ => Task.FromResult(options.Replicas));
        _lastWorkerSeenTicks = Environment.TickCount64;
        try
        {
            // A cluster answers 503 while it elects its JetStream leader (seconds after a start): retried until the deadline.
            using var setUpTimeout = new CancellationTokenSource(options.ConnectTimeout + TimeSpan.FromSeconds(5));
            INatsJSConsumer results = NatsConnect.RetryAsync(SetUpAsync, setUpTimeout.Token).GetAwaiter().GetResult();
            _loops.Add(Task.Run(() => ReadResultsAsync(results)));
            _loops.Add(Task.Run(ReadDirectResultsAsync));
            _loops.Add(Task.Run(ReadHeartbeatsAsync));
            _loops.Add(Task.Run(ReadAdvisoriesAsync));
            _loops.Add(Task.Run(ReadTakenAsync));
            if (!options.Durable)
            {
                _loops.Add(Task.Run(ReadDirectRepliesAsync));
            }

            for (int i = 0; i < options.LocalWorkers; i++)
            {
                _localWorkers.Add(ShmProcess.Start(static (string[] a) => NatsWorker.Run(a[0], a[1]), [options.Url, options.PoolName],
                    new ShmProcessOptions { Name = $"nats-{options.PoolName}-{i}" }));
            }
        }
        catch (Exception e)
        {
            Shutdown();
            if (e is NatsJSException or TimeoutException or OperationCanceledException)
            {
                throw new IOException($"NATS pool '{options.PoolName}': the server at {options.Url} cannot set up the pool's queue: {e.Message} (is JetStream on: nats-server -js?)", e);
            }

            throw;
        }

        _monitor = new Timer(static s => ((NatsPool)s!).Monitor(), this, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    /// <summary>The port of the server this pool is connected to now (tests kill that one in a cluster).</summary>
    internal int? ConnectedPort => _connection.ServerInfo?.Port;

    /// <summary>The pool's name.</summary>
    public string PoolName => _options.PoolName;

    /// <summary>The live workers of this pool on every host, as their heartbeats (one a second) tell.</summary>
    public IReadOnlyList<NatsWorkerInfo> Workers
    {
        get
        {
            long now = Environment.TickCount64;
            return _workers.Values.Where(w => now - w.SeenTicks <= (long)s_workerLapse.TotalMilliseconds).Select(static w => w.Info)
                .OrderBy(static w => w.Host, StringComparer.Ordinal).ThenBy(static w => w.Pid).ToArray();
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until at least <paramref name="count"/> workers are alive; false if
    /// <paramref name="timeout"/> passed first. Tasks do not need it (they wait for workers themselves); it is for
    /// callers that want the workers up before they start timing.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public bool WaitForWorkers(int count, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Workers.Count < count)
        {
            if (Environment.TickCount64 >= deadline)
            {
                return false;
            }

            Task.Delay(50, cancellationToken).GetAwaiter().GetResult();
        }

        return true;
    }

    private async Task<INatsJSConsumer> SetUpAsync(CancellationToken cancellationToken)
    {
        await _js.CreateOrUpdateStreamAsync(new StreamConfig(_subjects.Stream, [_subjects.Tasks, _subjects.ResultsAll])
        {
            NumReplicas = _options.Replicas,
            Retention = StreamConfigRetention.Workqueue,
            Storage = StreamConfigStorage.File,
            DuplicateWindow = TimeSpan.FromMinutes(2),
        }, cancellationToken).ConfigureAwait(false);
        await _js.CreateOrUpdateConsumerAsync(_subjects.Stream, new ConsumerConfig(PoolSubjects.WorkerConsumer)
        {
            FilterSubject = _subjects.Tasks,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _options.HeartbeatTimeout,
            MaxDeliver = _options.TaskRetries + 1,
            MaxAckPending = 10_000,
        }, cancellationToken).ConfigureAwait(false);
        return await _js.CreateOrUpdateConsumerAsync(_subjects.Stream, new ConsumerConfig("r-" + _callerId)
        {
            FilterSubject = _subjects.Results(_callerId),
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = TimeSpan.FromSeconds(30),
            InactiveThreshold = TimeSpan.FromMinutes(10),
            MaxAckPending = 10_000,
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Takes results off this caller's consumer and completes their tasks, through reconnects.</summary>
    private async Task ReadResultsAsync(INatsJSConsumer consumer)
    {
        CancellationToken stop = _stop.Token;
        var consumeOptions = new NatsJSConsumeOpts { MaxMsgs = 1000, Expires = TimeSpan.FromSeconds(5) };
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await foreach (INatsJSMsg<byte[]> message in consumer.ConsumeAsync<byte[]>(opts: consumeOptions, cancellationToken: stop).ConfigureAwait(false))
                {
                    await TakeResultAsync(message.Data, message.Headers, stop).ConfigureAwait(false);
                    _ = message.AckAsync(cancellationToken: stop).AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (NatsConnect.IsTransient(e) || e is NatsJSException)
            {
                await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Completes the task a result message is for, reading its body from the object store when it is there (and then
    /// deleting the object); a result for a task no longer pending (a second copy, a cancelled task) is dropped.
    /// </summary>
    private async Task TakeResultAsync(byte[]? data, NatsHeaders? headers, CancellationToken cancellationToken)
    {
        if (!long.TryParse(headers?[PoolHeaders.Task], out long id) || !_pending.ContainsKey(id))
        {
            return;
        }

        byte[]? body = await _blobs.UnwrapAsync(data, headers, cancellationToken).ConfigureAwait(false);
        if (body is not null && _pending.TryRemove(id, out PendingTask? task))
        {
            _bySequence.TryRemove(task.Sequence, out _);
            task.Complete(body);
        }

        if (headers?[PoolBlobs.Header] is { Count: > 0 } blob && !string.IsNullOrEmpty(blob[0]))
        {
            _blobs.Delete(blob[0]!);
        }
    }

    /// <summary>Runs <paramref name="handle"/> on every message of a core subscription until the pool stops, through reconnects.</summary>
    private async Task SubscribeLoopAsync(string subject, Action<byte[]> handle)
    {
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await foreach (NatsMsg<byte[]> message in _connection.SubscribeAsync<byte[]>(subject, cancellationToken: stop).ConfigureAwait(false))
                {
                    try
                    {
                        handle(message.Data ?? []);
                    }
                    catch (Exception e) when (e is InvalidDataException or ArgumentOutOfRangeException or IndexOutOfRangeException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
                    {
                        // Not a message of ours (another program on the subject): ignore it.
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (NatsConnect.IsTransient(e))
            {
                await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A worker took one of this caller's tasks: remember which, to know whom the task was lost with.</summary>
    private Task ReadTakenAsync() => SubscribeLoopAsync(_subjects.Taken(_callerId), body =>
    {
        var reader = new MessageReader(body);
        _ = reader.ReadKind();
        if (long.TryParse(reader.ReadRequiredString(), out long id) && _pending.TryGetValue(id, out PendingTask? task))
        {
            task.Holder = (reader.ReadRequiredString(), reader.ReadRequiredString(), reader.ReadInt32(), reader.ReadInt64());
        }
    });

    private Task ReadHeartbeatsAsync() => SubscribeLoopAsync(_subjects.Heartbeats, body =>
    {
        var reader = new MessageReader(body);
        _ = reader.ReadKind();
        string id = reader.ReadRequiredString();
        var info = new NatsWorkerInfo(id, reader.ReadRequiredString(), reader.ReadInt32(), reader.ReadInt64());
        long now = Environment.TickCount64;
        _workers[id] = (info, now);
        Volatile.Write(ref _lastWorkerSeenTicks, now);
    });

    /// <summary>The server tells when a task was delivered MaxDeliver times and the last worker's heartbeat lapsed too.</summary>
    private Task ReadAdvisoriesAsync() => SubscribeLoopAsync(_subjects.MaxDeliveriesAdvisory, body =>
    {
        using JsonDocument advisory = JsonDocument.Parse(body);
        ulong sequence = advisory.RootElement.GetProperty("stream_seq").GetUInt64();
        long deliveries = advisory.RootElement.TryGetProperty("deliveries", out JsonElement d) ? d.GetInt64() : _options.TaskRetries + 1;
        if (_bySequence.TryGetValue(sequence, out long id) && _pending.TryGetValue(id, out PendingTask? task))
        {
            FailLost(task, deliveries);
        }
    });

    /// <summary>Fails a task whose every delivery was lost with its worker: <see cref="ShmWorkerCrashedException"/>, and off the queue.</summary>
    private void FailLost(PendingTask task, long deliveries)
    {
        if (!_pending.TryRemove(task.Id, out _))
        {
            return;
        }

        _bySequence.TryRemove(task.Sequence, out _);
        string last = task.Holder is { } h ? $" (the last, process {h.Pid} on {h.Host}, stopped sending heartbeats)" : "";
        task.Fail(new ShmWorkerCrashedException(
            $"{task.Describe}: the task was given to {deliveries} workers and each was lost before finishing it{last}: killed, or cut off for " +
            $"longer than the heartbeat timeout of {_options.HeartbeatTimeout.TotalSeconds:0.#} s. TaskRetries is {_options.TaskRetries}."));
        DeleteTask(task.Sequence);
    }

    /// <summary>Fails tasks that waited too long: no worker alive for NoWorkerTimeout, or past TaskTimeout.</summary>
    private void Monitor()
    {
        long now = Environment.TickCount64;
        bool anyWorker = now - Volatile.Read(ref _lastWorkerSeenTicks) <= (long)s_workerLapse.TotalMilliseconds;
        long lastSeen = Volatile.Read(ref _lastWorkerSeenTicks);
        foreach (PendingTask task in _pending.Values)
        {
            Exception? failure = null;
            if (!anyWorker && now - Math.Max(task.SubmittedTicks, lastSeen) > (long)_options.NoWorkerTimeout.TotalMilliseconds)
            {
                failure = NoWorkerError(task);
            }
            else if (_options.TaskTimeout is TimeSpan limit && now - task.SubmittedTicks > (long)limit.TotalMilliseconds)
            {
                failure = new TimeoutException($"{task.Describe}: not done within the task timeout of {limit.TotalSeconds:0.#} s (NATS pool '{PoolName}' at {_options.Url}).");
            }

            if (failure is null && task.Holder is { } holder && holder.Delivery >= _options.TaskRetries + 1 && HolderLost(holder.WorkerId, now))
            {
                // The last delivery's worker is gone: the server will not hand the task out again (MaxDeliver), and its
                // advisory comes only when some other worker asks for work; this is the same verdict without waiting for one.
                FailLost(task, holder.Delivery);
                continue;
            }

            if (failure is not null && _pending.TryRemove(task.Id, out _))
            {
                _bySequence.TryRemove(task.Sequence, out _);
                task.Fail(failure);
                DeleteTask(task.Sequence);
            }
        }

        MonitorDirect(now);
    }

    private TimeoutException NoWorkerError(PendingTask task) =>
        new($"{task.Describe}: no worker of NATS pool '{PoolName}' at {_options.Url} took the task within " +
            $"{_options.NoWorkerTimeout.TotalSeconds:0.#} s; none is alive. Start one where the application runs with " +
            $"NatsWorker.Run(\"{_options.Url}\", \"{PoolName}\"), or set NatsPoolOptions.LocalWorkers (and check the pool name).");

    /// <summary>True when worker <paramref name="workerId"/> sent no heartbeat for the heartbeat timeout (and at least the worker lapse).</summary>
    private bool HolderLost(string workerId, long now)
    {
        long lapse = (long)Math.Max(_options.HeartbeatTimeout.TotalMilliseconds, s_workerLapse.TotalMilliseconds);
        return _workers.TryGetValue(workerId, out (NatsWorkerInfo Info, long SeenTicks) worker) && now - worker.SeenTicks > lapse;
    }

    /// <summary>Takes a failed task off the queue, so a worker that comes later does not run it for nobody.</summary>
    private void DeleteTask(ulong sequence)
    {
        if (sequence != 0 && !_stop.IsCancellationRequested)
        {
            _ = _js.DeleteMessageAsync(_subjects.Stream, new StreamMsgDeleteRequest { Seq = sequence, NoErase = true }).AsTask()
                .ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        }
    }

    /// <summary>Sends one chunk; the returned task completes with its results.</summary>
    private PendingTask<TResult> Submit<TArg, TResult>(TargetMethod target, ArraySegment<TArg> items, string what)
    {
        if (Volatile.Read(ref _state) != StateOpen)
        {
            throw new InvalidOperationException($"The NATS pool '{PoolName}' is {(_state == StateClosed ? "closed" : "terminated")}: it takes no new tasks.");
        }

        byte[] body = TaskWire.WriteTask(_serializerName, _serializer, target, items);
        long id = Interlocked.Increment(ref _nextTask);
        var task = new PendingTask<TResult>(id, $"{what} of {target.DisplayName} in NATS pool '{PoolName}'", _serializer);
        _pending[id] = task;
        _ = _options.Durable ? PublishAsync(task, body) : SendDirectAsync(task, body);
        return task;
    }

    private async Task PublishAsync(PendingTask task, byte[] body)
    {
        var headers = new NatsHeaders
        {
            [PoolHeaders.Caller] = _callerId,
            [PoolHeaders.Task] = task.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [PoolHeaders.MsgId] = $"t-{_callerId}-{task.Id}",
        };
        try
        {
            byte[] payload = await WrapAsync(task, body, headers).ConfigureAwait(false);
            PubAckResponse ack = await NatsConnect.RetryAsync(ct => _js.PublishAsync(_subjects.Tasks, payload, headers: headers, cancellationToken: ct).AsTask(), _stop.Token).ConfigureAwait(false);
            task.Sequence = NatsConnect.EnsureStored(ack);
            _bySequence[ack.Seq] = task.Id;
            if (!_pending.ContainsKey(task.Id))
            {
                _bySequence.TryRemove(ack.Seq, out _); // done (or failed) before the server's ack came back
            }
        }
        catch (Exception e) when (_pending.TryRemove(task.Id, out _))
        {
            task.Fail(e is OperationCanceledException ? new ObjectDisposedException(nameof(NatsPool), $"The NATS pool '{PoolName}' was terminated.")
                : new IOException($"{task.Describe}: the server at {_options.Url} did not store the task: {e.Message}", e));
        }
    }

    /// <summary>A task's message body: itself, or (too large for one message) a reference to an object deleted when the task is over.</summary>
    private async Task<byte[]> WrapAsync(PendingTask task, byte[] body, NatsHeaders headers)
    {
        (byte[] payload, string? blob) = await _blobs.WrapAsync(body, headers, _stop.Token).ConfigureAwait(false);
        if (blob is not null)
        {
            _ = task.Completion.ContinueWith(_ => _blobs.Delete(blob), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }

        return payload;
    }

    /// <summary>The largest task body that fits in one NATS message (the server's max_payload less room for headers).</summary>
    private int MaxBody => PoolBlobs.MaxBody(_connection);

    /// <summary>
    /// Sends <paramref name="items"/> in chunks of <paramref name="chunkSize"/>, halving any chunk too large for one
    /// message; a single item still too large goes through the object store (<see cref="PoolBlobs"/>).
    /// </summary>
    private List<(int Offset, PendingTask<TResult> Task)> SubmitChunks<TArg, TResult>(TargetMethod target, TArg[] items, int chunkSize, string what)
    {
        var chunks = new List<(int, PendingTask<TResult>)>();
        for (int offset = 0; offset < items.Length; offset += chunkSize)
        {
            SubmitFitting(new ArraySegment<TArg>(items, offset, Math.Min(chunkSize, items.Length - offset)));
        }

        return chunks;

        void SubmitFitting(ArraySegment<TArg> segment)
        {
            if (segment.Count > 1 && TaskWire.WriteTask(_serializerName, _serializer, target, segment).Length > MaxBody)
            {
                int half = segment.Count / 2;
                SubmitFitting(segment[..half]);
                SubmitFitting(segment[half..]);
                return;
            }

            chunks.Add((segment.Offset, Submit<TArg, TResult>(target, segment, $"{what} (items {segment.Offset}..{segment.Offset + segment.Count - 1})")));
        }
    }

    /// <summary>Items per chunk when the call does not say: about four chunks per live worker, as Python's Pool.map.</summary>
    private int DefaultChunkSize(int count) => Math.Max(1, (int)Math.Ceiling(count / (4.0 * Math.Max(2, Workers.Count))));

    /// <summary>Stops the pool taking work; what was submitted finishes. Then <see cref="Join(TimeSpan)"/>.</summary>
    public void Close() => Interlocked.CompareExchange(ref _state, StateClosed, StateOpen);

    /// <summary>Stops the pool at once: pending tasks fail with <see cref="ObjectDisposedException"/>, local workers are stopped, the connection closes.</summary>
    public void Terminate()
    {
        if (Interlocked.Exchange(ref _state, StateTerminated) == StateTerminated)
        {
            return;
        }

        foreach (long id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out PendingTask? task))
            {
                task.Fail(new ObjectDisposedException(nameof(NatsPool), $"The NATS pool '{PoolName}' was terminated before this task finished."));
            }
        }

        Shutdown();
    }

    /// <summary>After <see cref="Close"/>: waits up to <paramref name="timeout"/> for the tasks sent to finish, then ends the pool; false if they did not finish in time.</summary>
    /// <exception cref="InvalidOperationException">The pool was neither closed nor terminated.</exception>
    public bool Join(TimeSpan timeout)
    {
        if (Volatile.Read(ref _state) == StateOpen)
        {
            throw new InvalidOperationException($"Join the NATS pool '{PoolName}' after Close or Terminate.");
        }

        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!_pending.IsEmpty)
        {
            if (timeout != Timeout.InfiniteTimeSpan && Environment.TickCount64 >= deadline)
            {
                return false;
            }

            Thread.Sleep(10);
        }

        Shutdown();
        return true;
    }

    /// <summary>As <see cref="Join(TimeSpan)"/> with no time limit, without blocking a thread.</summary>
    /// <exception cref="InvalidOperationException">The pool was neither closed nor terminated.</exception>
    public async Task JoinAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _state) == StateOpen)
        {
            throw new InvalidOperationException($"Join the NATS pool '{PoolName}' after Close or Terminate.");
        }

        while (!_pending.IsEmpty)
        {
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }

        Shutdown();
        await _finished.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the pool's background work, local workers and connection; runs once.</summary>
    private void Shutdown()
    {
        if (Interlocked.Exchange(ref _shutDown, 1) != 0)
        {
            return;
        }

        _monitor?.Dispose();
        foreach (ShmProcess worker in _localWorkers)
        {
            worker.Terminate();
        }

        foreach (ShmProcess worker in _localWorkers)
        {
            if (!worker.Join(TimeSpan.FromSeconds(5)))
            {
                worker.Kill();
                worker.Join(TimeSpan.FromSeconds(5));
            }

            worker.Dispose();
        }

        try
        {
            // This caller's result consumer goes with it (a lost one expires by its InactiveThreshold).
            _js.DeleteConsumerAsync(_subjects.Stream, "r-" + _callerId).AsTask().Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }

        _stop.Cancel();
        try
        {
            Task.WaitAll(_loops.ToArray(), TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        _stop.Dispose();
        _finished.TrySetResult();
    }

    /// <summary>Terminates the pool (as <see cref="Terminate"/>).</summary>
    public void Dispose() => Terminate();

    /// <summary>Terminates the pool (as <see cref="Terminate"/>).</summary>
    public ValueTask DisposeAsync()
    {
        Terminate();
        return ValueTask.CompletedTask;
    }
}
