namespace ShmIpc;

/// <summary>
/// A message handed out for processing that must be settled: <see cref="Ack"/> when it is done, <see cref="Nack"/> to give
/// it back. The shape every ShmIpc queue with acknowledged delivery shares (shared memory today; other transports later).
/// </summary>
public interface IShmDelivery : IDisposable
{
    /// <summary>The message's bytes. Valid until the delivery is settled.</summary>
    /// <exception cref="InvalidOperationException">The delivery was already acked or nacked.</exception>
    ReadOnlySpan<byte> Span { get; }

    /// <summary>How many times the message has been delivered, this time included: 1 the first time.</summary>
    int DeliveryCount { get; }

    /// <summary>Copies the message into a new array.</summary>
    /// <exception cref="InvalidOperationException">The delivery was already acked or nacked.</exception>
    byte[] ToArray();

    /// <summary>Marks the message done: it is never delivered again.</summary>
    /// <exception cref="InvalidOperationException">The delivery was already acked or nacked.</exception>
    void Ack();

    /// <summary>Gives the message back: delivered again (<paramref name="requeue"/>) or sent to the dead-letter queue.</summary>
    /// <exception cref="InvalidOperationException">The delivery was already acked or nacked.</exception>
    void Nack(bool requeue = true);
}

/// <summary>
/// A message taken from an acknowledged <see cref="ShmQueue"/> (<see cref="ShmQueue.Take(CancellationToken)"/>). Its bytes
/// are read in place in shared memory, and its space in the ring stays held until it is settled: <see cref="Ack"/> when
/// done, <see cref="Nack"/> to have it delivered again (or dead-lettered). Disposing an unsettled delivery nacks it. If
/// the process dies first, the message is delivered again to another consumer, with <see cref="DeliveryCount"/> one higher.
/// </summary>
/// <remarks>Settle each delivery once, from any thread; a second Ack or Nack throws.</remarks>
public sealed class ShmDelivery : IShmDelivery
{
    // Design: one state word, changed once by CAS from Taken to the outcome (Ack, Nack or a release by the queue's
    // Dispose); whoever wins the CAS does the shared-memory step, so two racing settles cannot both touch the record.
    private const int Taken = 0;
    private const int Acked = 1;
    private const int Nacked = 2;
    private const int Released = 3;

    private readonly ShmQueue _queue;
    private readonly Ring.ReadLease _lease;
    private int _state;

    internal ShmDelivery(ShmQueue queue, Ring.ReadLease lease, int deliveryCount)
    {
        _queue = queue;
        _lease = lease;
        DeliveryCount = deliveryCount;
    }

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Span
    {
        get
        {
            ThrowIfSettled();
            return _lease.Payload;
        }
    }

    /// <inheritdoc/>
    public int DeliveryCount { get; }

    /// <summary>The message's length in bytes.</summary>
    public int Length => _lease.Length;

    /// <summary>True once the delivery was acked, nacked or released.</summary>
    public bool IsSettled => Volatile.Read(ref _state) != Taken;

    internal ref readonly Ring.ReadLease Lease => ref _lease;

    /// <inheritdoc/>
    public byte[] ToArray() => Span.ToArray();

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The queue was disposed (the delivery was released then).</exception>
    public void Ack()
    {
        Settle(Acked);
        _queue.AckDelivery(this);
    }

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The queue was disposed (the delivery was released then).</exception>
    public void Nack(bool requeue = true)
    {
        Settle(Nacked);
        _queue.NackDelivery(this, requeue);
    }

    /// <summary>Nacks the delivery (requeue) unless it was settled.</summary>
    public void Dispose()
    {
        if (!IsSettled)
        {
            try
            {
                Nack();
            }
            catch (InvalidOperationException)
            {
                // Settled by another thread meanwhile (or the queue is gone and released it): nothing left to do.
            }
        }
    }

    /// <summary>Called by the queue's Dispose: gives the message back; false when the delivery was settled already.</summary>
    internal bool TryRelease() => Interlocked.CompareExchange(ref _state, Released, Taken) == Taken;

    private void Settle(int outcome)
    {
        int before = Interlocked.CompareExchange(ref _state, outcome, Taken);
        if (before != Taken)
        {
            ThrowSettled(before);
        }
    }

    private void ThrowIfSettled()
    {
        int state = Volatile.Read(ref _state);
        if (state != Taken)
        {
            ThrowSettled(state);
        }
    }

    private void ThrowSettled(int state)
    {
        if (state == Released)
        {
            throw new ObjectDisposedException(nameof(ShmQueue), $"Queue '{_queue.Name}' was disposed; this delivery was given back to the queue.");
        }

        throw new InvalidOperationException($"This delivery from queue '{_queue.Name}' was already {(state == Acked ? "acked" : "nacked")}.");
    }
}

/// <summary>A typed <see cref="ShmDelivery"/>: the value was deserialized from the message when it was taken.</summary>
/// <typeparam name="T">The type of the value.</typeparam>
public sealed class ShmDelivery<T> : IShmDelivery
{
    internal ShmDelivery(ShmDelivery delivery, T value)
    {
        Delivery = delivery;
        Value = value;
    }

    /// <summary>The value.</summary>
    public T Value { get; }

    /// <summary>The byte delivery underneath.</summary>
    public ShmDelivery Delivery { get; }

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Span => Delivery.Span;

    /// <inheritdoc/>
    public int DeliveryCount => Delivery.DeliveryCount;

    /// <inheritdoc/>
    public byte[] ToArray() => Delivery.ToArray();

    /// <inheritdoc/>
    public void Ack() => Delivery.Ack();

    /// <inheritdoc/>
    public void Nack(bool requeue = true) => Delivery.Nack(requeue);

    /// <inheritdoc/>
    public void Dispose() => Delivery.Dispose();
}
