using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using NATS.Client.Core;
using ShmIpc.Hosting;
using ShmIpc.Nats.Internal;

namespace ShmIpc.Nats;

// The worker's side of the direct task path (NatsPoolOptions.Durable = false).
public static partial class NatsWorker
{
    /// <summary>
    /// Serves direct tasks: core requests on the pool's queue-group subject, answered with their results, beside the
    /// durable loop of <see cref="RunAsync"/>, until <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <remarks>
    /// Design: the subscription loop only takes a task in and starts its in-progress ping (every third of the caller's
    /// heartbeat timeout, sent to the task's reply subject); one runner runs the taken tasks in order. So a task waiting
    /// behind a long one is pinged too and its caller does not give it to another worker: only a dead worker (or a lost
    /// connection) goes silent. A worker stopped by its token drops the tasks it had not run; their callers send them
    /// again after the heartbeat timeout.
    /// </remarks>
    private static async Task ServeDirectAsync(NatsConnection connection, PoolBlobs blobs, PoolSubjects subjects,
        ConcurrentDictionary<TargetMethod, ChunkRunner> runners, WorkerState state, CancellationToken cancellationToken)
    {
        var taken = Channel.CreateUnbounded<(NatsMsg<byte[]> Message, Timer Ping)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        Task running = RunDirectTasksAsync(taken.Reader, blobs, runners, state, cancellationToken);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (NatsMsg<byte[]> message in connection.SubscribeAsync<byte[]>(subjects.DirectTasks, queueGroup: PoolSubjects.WorkerConsumer,
                    cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    if (message.ReplyTo is null || message.Headers?[PoolHeaders.Task] is not { Count: > 0 } task)
                    {
                        continue; // not a task of ours
                    }

                    long beat = long.TryParse(message.Headers[PoolHeaders.Beat], NumberStyles.None, CultureInfo.InvariantCulture, out long ms) ? ms : 5000;
                    TimeSpan period = TimeSpan.FromMilliseconds(Math.Max(100, beat / 3));
                    var ping = new Timer(static s => Ping(((NatsConnection, string, NatsHeaders))s!), (connection, message.ReplyTo,
                        new NatsHeaders { [PoolHeaders.Task] = task, [PoolHeaders.Progress] = "1" }), period, period);
                    taken.Writer.TryWrite((message, ping));
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (NatsConnect.IsTransient(e))
            {
                await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
            }
        }

        taken.Writer.TryComplete();
        await running.ConfigureAwait(false);
    }

    private static void Ping((NatsConnection Connection, string ReplyTo, NatsHeaders Headers) p) =>
        _ = p.Connection.PublishAsync(p.ReplyTo, headers: p.Headers).AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);

    /// <summary>Runs taken direct tasks one at a time and replies with each one's results.</summary>
    private static async Task RunDirectTasksAsync(ChannelReader<(NatsMsg<byte[]> Message, Timer Ping)> taken, PoolBlobs blobs,
        ConcurrentDictionary<TargetMethod, ChunkRunner> runners, WorkerState state, CancellationToken cancellationToken)
    {
        try
        {
            await foreach ((NatsMsg<byte[]> message, Timer ping) in taken.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                try
                {
                    // The argument object gone (null): its caller is done with the task.
                    if (!cancellationToken.IsCancellationRequested && await blobs.UnwrapAsync(message.Data, message.Headers, cancellationToken).ConfigureAwait(false) is byte[] body)
                    {
                        byte[] results = Execute(body, runners);
                        var headers = new NatsHeaders { [PoolHeaders.Task] = message.Headers![PoolHeaders.Task] };
                        (byte[] payload, _) = await blobs.WrapAsync(results, headers, cancellationToken).ConfigureAwait(false);
                        await message.ReplyAsync(payload, headers: headers, cancellationToken: cancellationToken).ConfigureAwait(false);
                        state.Done();
                    }
                }
                catch (Exception e) when (e is OperationCanceledException || NatsConnect.IsTransient(e) || e is NatsException or IOException)
                {
                    // Stopping, or the connection lost: no reply, so the caller sends the task again after its heartbeat timeout.
                }
                finally
                {
                    await ping.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        finally
        {
            while (taken.TryRead(out (NatsMsg<byte[]> _, Timer Ping) left))
            {
                await left.Ping.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
