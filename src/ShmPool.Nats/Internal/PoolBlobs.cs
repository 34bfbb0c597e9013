using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.ObjectStore;

namespace ShmIpc.Nats.Internal;

/// <summary>
/// Task and result bodies too large for one NATS message (the server's max_payload, 1 MiB by default) go through the
/// pool's JetStream object store, <c>shmpool_{pool}</c>, which splits them into chunks: the message then carries no
/// body and the object's name in its <see cref="Header"/>.
/// </summary>
/// <remarks>
/// Design: who deletes an object. A task's argument object is read by every worker the task is given to (a redelivery
/// reads it again), so its caller deletes it once the task is over (result, failure or cancellation). A result object
/// is read by the caller only, which deletes it once it has read it; a result sent both ways (direct and stored, when a
/// reply was lost) names the same object, so the second read finds nothing and the caller drops that copy as it drops any
/// second result. The bucket's MaxAge removes what a killed caller leaves behind.
/// </remarks>
internal sealed class PoolBlobs(NatsJSContext js, string poolName, Func<CancellationToken, Task<int>> replicas)
{
    /// <summary>The header naming the object that holds a message's body.</summary>
    public const string Header = "Shm-Blob";

    /// <summary>Room left in a message for its headers.</summary>
    private const int HeaderRoom = 4096;

    private Task<INatsObjStore>? _store;

    public string Bucket { get; } = "shmpool_" + poolName;

    /// <summary>The largest body that goes in the message itself.</summary>
    public static int MaxBody(INatsConnection connection) => Math.Max(1024, (connection.ServerInfo?.MaxPayload ?? 1024 * 1024) - HeaderRoom);

    /// <summary>
    /// Stores <paramref name="body"/> as an object when it is too large for one message and names it in
    /// <paramref name="headers"/>; returns what the message carries (the body itself, or nothing) and the object's name.
    /// </summary>
    public async Task<(byte[] Payload, string? Blob)> WrapAsync(byte[] body, NatsHeaders headers, CancellationToken cancellationToken)
    {
        if (body.Length <= MaxBody(js.Connection))
        {
            return (body, null);
        }

        string name = Guid.NewGuid().ToString("N");
        INatsObjStore store = await StoreAsync(cancellationToken).ConfigureAwait(false);
        await NatsConnect.RetryAsync(async ct => await store.PutAsync(name, body, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        headers[Header] = name;
        return ([], name);
    }

    /// <summary>The body of a message: its own, or the object its <see cref="Header"/> names (null when that object is gone: a copy already read).</summary>
    public async Task<byte[]?> UnwrapAsync(byte[]? data, NatsHeaders? headers, CancellationToken cancellationToken)
    {
        if (headers?[Header] is not { Count: > 0 } values || string.IsNullOrEmpty(values[0]))
        {
            return data ?? [];
        }

        INatsObjStore store = await StoreAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await store.GetBytesAsync(values[0]!, cancellationToken).ConfigureAwait(false);
        }
        catch (NatsObjNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Deletes an object (best effort: the bucket's MaxAge removes one this misses).</summary>
    public void Delete(string name) => _ = DeleteAsync(name).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);

    private async Task DeleteAsync(string name)
    {
        INatsObjStore store = await StoreAsync(CancellationToken.None).ConfigureAwait(false);
        await store.DeleteAsync(name).ConfigureAwait(false);
    }

    /// <summary>The pool's object store, created on first use with the pool's replicas (opened again after a failed try).</summary>
    private Task<INatsObjStore> StoreAsync(CancellationToken cancellationToken)
    {
        Task<INatsObjStore>? store = Volatile.Read(ref _store);
        if (store is null || store.IsFaulted || store.IsCanceled)
        {
            _ = Interlocked.CompareExchange(ref _store, OpenAsync(), store);
            store = Volatile.Read(ref _store)!;
        }

        return store.WaitAsync(cancellationToken);
    }

    private async Task<INatsObjStore> OpenAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int copies = await replicas(timeout.Token).ConfigureAwait(false);
        var objects = new NatsObjContext(js);
        return await NatsConnect.RetryAsync(ct => objects.CreateObjectStoreAsync(new NatsObjConfig(Bucket)
        {
            Storage = NatsObjStorageType.File,
            NumberOfReplicas = copies,
            MaxAge = TimeSpan.FromDays(1),
        }, ct).AsTask(), timeout.Token).ConfigureAwait(false);
    }
}
