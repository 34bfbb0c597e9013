using NATS.Client.Core;
using ShmIpc.Nats.Internal;

namespace ShmIpc.Nats;

// Results sent straight to this caller by the worker (the fast path); the stored results consumer is the fallback.
public sealed partial class NatsPool
{
    /// <summary>
    /// Takes results a worker sends straight to this caller over core NATS, completes their tasks and replies, through
    /// reconnects.
    /// </summary>
    /// <remarks>
    /// Design: a result reaches the caller by one of two paths. The worker first sends it as a core request to
    /// <see cref="PoolSubjects.Direct"/>; this loop completes the task and then replies, so a reply means the caller has
    /// the result, and only then does the worker acknowledge the task. With no reply (this caller disconnected, gone, or
    /// slow for the worker's reply timeout) the worker stores the result in the stream as before
    /// (<see cref="ReadResultsAsync"/>), so none is lost. A result that comes both ways (a reply lost on the way back)
    /// is taken once: the first path to remove the task from the pending table completes it, the other finds nothing.
    /// The direct path skips a JetStream store and a consumer delivery on the way back: the Apply round trip's other half.
    /// </remarks>
    private async Task ReadDirectResultsAsync()
    {
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await foreach (NatsMsg<byte[]> message in _connection.SubscribeAsync<byte[]>(_subjects.Direct(_callerId), cancellationToken: stop).ConfigureAwait(false))
                {
                    await TakeResultAsync(message.Data, message.Headers, stop).ConfigureAwait(false);

                    if (message.ReplyTo is not null)
                    {
                        _ = message.ReplyAsync(Array.Empty<byte>(), cancellationToken: stop).AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
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
}
