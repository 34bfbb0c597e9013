using System.Diagnostics.CodeAnalysis;

namespace ShmIpc;

/// <summary>
/// A queue of byte messages between processes, whatever carries them: <see cref="ShmQueue"/> (shared memory, one
/// machine) or a network backend such as <c>ShmIpc.Nats.NatsQueue</c> (a NATS JetStream work queue, any host).
/// Code written against this interface runs on either; each member means what it means on <see cref="ShmQueue"/>.
/// </summary>
public interface IShmQueue : IDisposable, IAsyncDisposable
{
    /// <summary>The queue's name, as other processes open it.</summary>
    string Name { get; }

    /// <summary>Adds <paramref name="message"/>, waiting up to <paramref name="timeout"/> for room (then <see cref="TimeoutException"/>).</summary>
    void Enqueue(ReadOnlySpan<byte> message, TimeSpan timeout);

    /// <summary>Adds <paramref name="message"/>, waiting for room until <paramref name="cancellationToken"/> is cancelled.</summary>
    void Enqueue(ReadOnlySpan<byte> message, CancellationToken cancellationToken);

    /// <summary>Adds <paramref name="message"/> if there is room within <paramref name="timeout"/>; false otherwise.</summary>
    bool TryEnqueue(ReadOnlySpan<byte> message, TimeSpan timeout);

    /// <summary>Adds <paramref name="message"/> without blocking a thread.</summary>
    ValueTask EnqueueAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default);

    /// <summary>Removes and returns the oldest message, waiting up to <paramref name="timeout"/> for one (then <see cref="TimeoutException"/>).</summary>
    byte[] Dequeue(TimeSpan timeout);

    /// <summary>Removes and returns the oldest message, waiting until <paramref name="cancellationToken"/> is cancelled.</summary>
    byte[] Dequeue(CancellationToken cancellationToken);

    /// <summary>Removes the oldest message if one comes within <paramref name="timeout"/>; false otherwise.</summary>
    bool TryDequeue([NotNullWhen(true)] out byte[]? message, TimeSpan timeout);

    /// <summary>Removes and returns the oldest message without blocking a thread.</summary>
    ValueTask<byte[]> DequeueAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// A queue of typed messages between processes, whatever carries them: <see cref="ShmQueue{T}"/> or a network backend
/// such as <c>ShmIpc.Nats.NatsQueue&lt;T&gt;</c>. Each member means what it means on <see cref="ShmQueue{T}"/>.
/// </summary>
/// <typeparam name="T">The message type.</typeparam>
public interface IShmQueue<T> : IDisposable, IAsyncDisposable
{
    /// <summary>The queue's name, as other processes open it.</summary>
    string Name { get; }

    /// <summary>Adds <paramref name="value"/>, waiting up to <paramref name="timeout"/> for room (then <see cref="TimeoutException"/>).</summary>
    void Enqueue(T value, TimeSpan timeout);

    /// <summary>Adds <paramref name="value"/>, waiting for room until <paramref name="cancellationToken"/> is cancelled.</summary>
    void Enqueue(T value, CancellationToken cancellationToken = default);

    /// <summary>Adds <paramref name="value"/> if there is room within <paramref name="timeout"/>; false otherwise.</summary>
    bool TryEnqueue(T value, TimeSpan timeout);

    /// <summary>Adds <paramref name="value"/> without blocking a thread.</summary>
    ValueTask EnqueueAsync(T value, CancellationToken cancellationToken = default);

    /// <summary>Removes and returns the oldest value, waiting up to <paramref name="timeout"/> for one (then <see cref="TimeoutException"/>).</summary>
    T Dequeue(TimeSpan timeout);

    /// <summary>Removes and returns the oldest value, waiting until <paramref name="cancellationToken"/> is cancelled.</summary>
    T Dequeue(CancellationToken cancellationToken = default);

    /// <summary>Removes the oldest value if one comes within <paramref name="timeout"/>; false otherwise.</summary>
    bool TryDequeue([MaybeNullWhen(false)] out T value, TimeSpan timeout);

    /// <summary>Removes and returns the oldest value without blocking a thread.</summary>
    ValueTask<T> DequeueAsync(CancellationToken cancellationToken = default);
}
