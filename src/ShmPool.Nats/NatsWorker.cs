using System.Collections.Concurrent;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using ShmIpc.Hosting;
using ShmIpc.Nats.Internal;
using ShmIpc.Protocol;

namespace ShmIpc.Nats;

/// <summary>
/// Worker mode: makes the current process a worker of a <see cref="NatsPool"/>, on this host or any other that reaches
/// the NATS server. Call it from your application's <c>Main</c>, in the same build of the application the pool runs, so
/// the static methods the pool sends are found here:
/// <code>
/// if (args is ["--worker", var url]) { NatsWorker.Run(url, "images"); return; }
/// </code>
/// </summary>
/// <remarks>
/// A worker takes one task at a time from the pool's JetStream work queue, runs it and publishes the results, then
/// acknowledges the task. While it runs a task it sends an in-progress acknowledgement every third of the pool's
/// heartbeat lapse: a slow task keeps its worker, and a worker that dies (SIGKILL, a lost host) stops sending them, so
/// the server gives its task to another worker once the lapse passes. Workers may join and leave at any time; each
/// announces itself once a second (<see cref="NatsPool.Workers"/>). A worker started before any pool of its name waits
/// for the pool to create the queue.
/// </remarks>
public static partial class NatsWorker
{
    /// <summary>Serves pool <paramref name="poolName"/> at <paramref name="url"/> until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <param name="url">The NATS server (nats://host:4222), or several of one cluster separated by commas.</param>
    /// <param name="poolName">The pool's name (<see cref="NatsPoolOptions.PoolName"/>).</param>
    /// <param name="cancellationToken">Stops the worker after its current task.</param>
    /// <exception cref="IOException">The server cannot be reached.</exception>
    public static void Run(string url, string poolName, CancellationToken cancellationToken = default) =>
        RunAsync(url, poolName, cancellationToken).GetAwaiter().GetResult();

    /// <summary>As <see cref="Run"/>, without blocking a thread while it waits for tasks.</summary>
    /// <exception cref="IOException">The server cannot be reached.</exception>
    public static async Task RunAsync(string url, string poolName, CancellationToken cancellationToken = default)
    {
        var subjects = new PoolSubjects(poolName);
        string id = $"{Environment.ProcessId}-{Guid.NewGuid():N}"[..16];
        await using NatsConnection connection = await NatsConnect.ConnectAsync(url, $"NATS pool '{poolName}' worker", TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        var js = new NatsJSContext(connection);
        var state = new WorkerState(id);
        using var heartbeat = new Timer(static s => ((WorkerHeartbeat)s!).Beat(), new WorkerHeartbeat(connection, subjects, state), TimeSpan.Zero, TimeSpan.FromSeconds(1));
        INatsJSConsumer consumer = await BindAsync(js, subjects, cancellationToken).ConfigureAwait(false);
        TimeSpan ackWait = consumer.Info.Config.AckWait;
        long maxDeliver = consumer.Info.Config.MaxDeliver;
        var runners = new ConcurrentDictionary<TargetMethod, ChunkRunner>();
        var blobs = new PoolBlobs(js, poolName, async ct => (await js.GetStreamAsync(subjects.Stream, cancellationToken: ct).ConfigureAwait(false)).Info.Config.NumReplicas);
        var nextOptions = new NatsJSNextOpts { Expires = TimeSpan.FromSeconds(5) };
        Task direct = ServeDirectAsync(connection, blobs, subjects, runners, state, cancellationToken);
        Task delivering = Task.CompletedTask;
        while (!cancellationToken.IsCancellationRequested)
        {
            INatsJSMsg<byte[]>? next;
            try
            {
                next = await consumer.NextAsync<byte[]>(opts: nextOptions, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (NatsConnect.IsTransient(e))
            {
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (next is not INatsJSMsg<byte[]> message)
            {
                continue;
            }

            try
            {
                // Design: one delivery in flight. A task's results go out and it is acknowledged (DeliverAsync) while
                // this loop already asks for and runs the next task; before the next delivery starts, the previous one
                // must have finished, so a worker whose deliveries stall (the server away) holds at most two tasks, both
                // kept by their heartbeats.
                Func<Task>? deliver = await RunTaskAsync(js, blobs, subjects, id, message, ackWait, maxDeliver, runners, cancellationToken).ConfigureAwait(false);
                await EndDeliveryAsync(delivering, poolName).ConfigureAwait(false);
                delivering = deliver is null ? Task.CompletedTask : DeliverThenCountAsync(deliver, state);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (NatsConnect.IsTransient(e))
            {
                // A message that was not a task could not be terminated (the connection down): it comes again.
            }
        }

        await EndDeliveryAsync(delivering, poolName).ConfigureAwait(false);
        await direct.ConfigureAwait(false);
    }

    private static async Task DeliverThenCountAsync(Func<Task> deliver, WorkerState state)
    {
        await deliver().ConfigureAwait(false);
        state.Done();
    }

    /// <summary>Waits for a delivery; one the server refused is reported, and the worker serves on.</summary>
    private static async Task EndDeliveryAsync(Task delivering, string poolName)
    {
        try
        {
            await delivering.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is NatsException or IOException)
        {
            // The server refused the results (too large, the stream removed): the task is not acknowledged, so it goes
            // to a worker again after the heartbeat timeout, and fails after its retries. The worker serves on.
            Console.Error.WriteLine($"NATS pool '{poolName}' worker {Environment.ProcessId}: could not deliver a result: {e.Message}");
        }
    }

    /// <summary>Finds the pool's task consumer, waiting (with no limit but the token) for a pool to create it.</summary>
    private static async Task<INatsJSConsumer> BindAsync(NatsJSContext js, PoolSubjects subjects, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                return await js.GetConsumerAsync(subjects.Stream, PoolSubjects.WorkerConsumer, cancellationToken).ConfigureAwait(false);
            }
            catch (NatsJSApiException e) when (e.Error.Code == 404)
            {
                // No pool of this name yet: wait for one.
            }
            catch (Exception e) when (NatsConnect.IsTransient(e))
            {
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs one task; returns what delivers its results and acknowledges it (null for a message that was not a task).</summary>
    private static async Task<Func<Task>?> RunTaskAsync(NatsJSContext js, PoolBlobs blobs, PoolSubjects subjects, string workerId, INatsJSMsg<byte[]> message, TimeSpan ackWait,
        long maxDeliver, ConcurrentDictionary<TargetMethod, ChunkRunner> runners, CancellationToken cancellationToken)
    {
        string? caller = message.Headers?[PoolHeaders.Caller];
        string? task = message.Headers?[PoolHeaders.Task];
        if (caller is null || task is null)
        {
            // Not a task of ours: take it off the queue rather than see it again and again.
            await message.AckTerminateAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return null;
        }

        // Tell the caller who holds its task when this may be its last delivery: if this process dies with it, the caller
        // knows whom it lost and fails the task without waiting for the server's advisory. A first delivery of a task
        // with retries left needs no such message (the server hands it out again), which spares one message per task.
        long delivery = (long)(message.Metadata?.NumDelivered ?? 1);
        if (delivery > 1 || maxDeliver is > 0 and <= 1)
        {
            var taken = new MessageWriter();
            taken.Reset(MessageKind.Ready);
            taken.WriteString(task);
            taken.WriteString(workerId);
            taken.WriteString(Environment.MachineName);
            taken.WriteInt32(Environment.ProcessId);
            taken.WriteInt64(delivery);
            _ = js.Connection.PublishAsync(subjects.Taken(caller), taken.WrittenMemory.ToArray(), cancellationToken: cancellationToken).AsTask()
                .ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        }

        // Design: the heartbeat. An in-progress ack every third of AckWait resets the server's redelivery timer: the task
        // stays with this worker as long as the process lives, however long the function runs, until it is acknowledged
        // after its results are delivered. Two missed beats still leave a third of the lapse; a SIGKILLed worker sends
        // none, and its task goes to another after at most AckWait.
        TimeSpan period = TimeSpan.FromTicks(Math.Max(ackWait.Ticks / 3, TimeSpan.TicksPerMillisecond * 100));
        var progress = new Timer(static s => _ = ((INatsJSMsg<byte[]>)s!).AckProgressAsync().AsTask().ContinueWith(
            static t => _ = t.Exception, TaskScheduler.Default), message, period, period);
        byte[] results;
        try
        {
            if (await blobs.UnwrapAsync(message.Data, message.Headers, cancellationToken).ConfigureAwait(false) is not byte[] body)
            {
                // The argument object is gone: its caller is done with the task (cancelled it, or failed it on a timeout).
                await progress.DisposeAsync().ConfigureAwait(false);
                await message.AckTerminateAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                return null;
            }

            results = Execute(body, runners);
        }
        catch
        {
            await progress.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return async () =>
        {
            try
            {
                await DeliverAsync(js, blobs, subjects, caller, task, results, cancellationToken).ConfigureAwait(false);
                try
                {
                    await message.AckAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (NatsConnect.IsTransient(e))
                {
                    // The server went away between the results and the ack: it will hand the task out again after AckWait, and
                    // the caller drops the second result (it keeps the first).
                }
            }
            finally
            {
                await progress.DisposeAsync().ConfigureAwait(false);
            }
        };
    }

    /// <summary>How long a worker waits for the caller to confirm results sent straight to it before it stores them instead.</summary>
    private static readonly TimeSpan s_directReplyTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Gets a task's results to its caller before the task is acknowledged: straight to it when it answers (the fast
    /// path, <see cref="NatsPool"/>'s direct results), else stored in the stream, where the caller finds them when it is
    /// back. Either way a crash before the acknowledgement runs the task again (at least once), never loses it.
    /// </summary>
    private static async Task DeliverAsync(NatsJSContext js, PoolBlobs blobs, PoolSubjects subjects, string caller, string task, byte[] results, CancellationToken cancellationToken)
    {
        var headers = new NatsHeaders { [PoolHeaders.Task] = task };
        (byte[] payload, string? blob) = await blobs.WrapAsync(results, headers, cancellationToken).ConfigureAwait(false);
        try
        {
            _ = await js.Connection.RequestAsync<byte[], byte[]>(subjects.Direct(caller), payload, headers: headers,
                replyOpts: new NatsSubOpts { Timeout = s_directReplyTimeout }, cancellationToken: cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is NatsException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            // No responders (the caller is away), no reply in time, the connection down: store them instead.
        }

        var stored = new NatsHeaders
        {
            [PoolHeaders.Task] = task,
            [PoolHeaders.MsgId] = $"r-{caller}-{task}",
        };
        if (blob is not null)
        {
            stored[PoolBlobs.Header] = blob;
        }

        // Retried through a server restart; the message id keeps a repeated publish single.
        PubAckResponse ack = await NatsConnect.RetryAsync(ct => js.PublishAsync(subjects.Results(caller), payload, headers: stored, cancellationToken: ct).AsTask(),
            cancellationToken).ConfigureAwait(false);
        NatsConnect.EnsureStored(ack);
    }

    private static byte[] Execute(byte[] body, ConcurrentDictionary<TargetMethod, ChunkRunner> runners)
    {
        try
        {
            (IShmObjectSerializer serializer, TargetMethod target, int count, ReadOnlyMemory<byte> items) = TaskWire.ReadTask(body);
            ChunkRunner runner = runners.GetOrAdd(target, static t => ChunkRunner.Create(t.Resolve()));
            return runner.Run(serializer, items, count);
        }
#pragma warning disable CA1031 // Whatever stops the chunk (a method this build does not have, a bad message) goes back to its caller.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return TaskWire.WriteFailure(RemoteError.From(new InvalidOperationException(
                $"Worker {Environment.ProcessId} on {Environment.MachineName} could not run the task: {e.Message} " +
                "(a worker must run the same build of the application as the pool)", e)));
        }
    }

    /// <summary>What a worker tells about itself in its heartbeat.</summary>
    private sealed class WorkerState(string id)
    {
        private long _done;

        public string Id { get; } = id;

        public long TasksDone => Interlocked.Read(ref _done);

        public void Done() => Interlocked.Increment(ref _done);
    }

    /// <summary>Publishes the worker's heartbeat: id, host, pid, tasks done.</summary>
    private sealed class WorkerHeartbeat(NatsConnection connection, PoolSubjects subjects, WorkerState state)
    {
        public void Beat()
        {
            if (connection.ConnectionState != NatsConnectionState.Open)
            {
                return;
            }

            var writer = new MessageWriter();
            writer.Reset(MessageKind.Ready);
            writer.WriteString(state.Id);
            writer.WriteString(Environment.MachineName);
            writer.WriteInt32(Environment.ProcessId);
            writer.WriteInt64(state.TasksDone);
            _ = connection.PublishAsync(subjects.Heartbeats, writer.WrittenMemory.ToArray()).AsTask().ContinueWith(
                static t => _ = t.Exception, TaskScheduler.Default);
        }
    }
}
