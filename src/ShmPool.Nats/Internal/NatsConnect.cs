using NATS.Client.Core;

namespace ShmIpc.Nats.Internal;

/// <summary>Opens the NATS connection of a pool, a worker or a queue, with errors that name the server and the object.</summary>
internal static class NatsConnect
{
    /// <summary>
    /// Connects to <paramref name="url"/> (one URL, or several separated by commas: servers of one cluster). After the
    /// first connection the client reconnects by itself, for ever, quickly (every 0.1 to 1 s): a restarted server
    /// finds its pools and workers back within a second.
    /// </summary>
    /// <exception cref="IOException">No server answered at <paramref name="url"/> within <paramref name="timeout"/>.</exception>
    public static async Task<NatsConnection> ConnectAsync(string url, string who, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(url);
        var connection = new NatsConnection(new NatsOpts
        {
            Url = url,
            Name = who,
            ConnectTimeout = timeout,
            ReconnectWaitMin = TimeSpan.FromMilliseconds(100),
            ReconnectWaitMax = TimeSpan.FromSeconds(1),
            ReconnectJitter = TimeSpan.FromMilliseconds(50),
            MaxReconnectRetry = -1,
            RequestTimeout = TimeSpan.FromSeconds(5),
            SubPendingChannelFullMode = System.Threading.Channels.BoundedChannelFullMode.Wait,
        });
        try
        {
            await connection.ConnectAsync().AsTask().WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (Exception e) when (e is NatsException or TimeoutException or System.Net.Sockets.SocketException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"{who}: cannot connect to the NATS server at {url}: {e.Message} " +
                "(is nats-server running there with JetStream, nats-server -js, and is the URL right?)", e);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Retries <paramref name="operation"/> while the connection is down or the server restarts (no responders, time-outs),
    /// until it succeeds or <paramref name="cancellationToken"/> is cancelled. The operation must be safe to repeat
    /// (a JetStream publish with a message id is: the server stores it once).
    /// </summary>
    public static async Task<T> RetryAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return await operation(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e) && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(50 * (attempt + 1), 500)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Checks a JetStream publish acknowledgement. A duplicate counts as stored: it is what a publish repeated after a
    /// lost acknowledgement (a server restart) gets, and the message id made sure the first copy is the one kept.
    /// </summary>
    /// <exception cref="NATS.Client.JetStream.NatsJSApiException">The server refused the message.</exception>
    public static ulong EnsureStored(NATS.Client.JetStream.Models.PubAckResponse ack)
    {
        if (ack.Error is { } error)
        {
            throw new NATS.Client.JetStream.NatsJSApiException(error);
        }

        return ack.Seq;
    }

    /// <summary>What a server restart or a lost connection throws: worth retrying.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        // 503: JetStream not ready yet (a server starting, a cluster electing a leader).
        NATS.Client.JetStream.NatsJSApiException api => api.Error.Code == 503,
        NatsException or TimeoutException or System.Net.Sockets.SocketException or IOException => true,
        _ => false,
    };
}
