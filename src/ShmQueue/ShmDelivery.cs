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
/// <remarks>
/// A small struct, so a take allocates nothing. Whether it is settled is read from the record in shared memory (still
/// taken by this process at this position), not from the struct: every copy sees the same answer, and a second Ack or
/// Nack throws. Settle each delivery from one thread at a time; settle or dispose deliveries before disposing the queue
/// (a delivery still held by a live process is never taken from it, and its bytes go away with the queue's mapping).
/// </remarks>
public readonly struct ShmDelivery : IShmDelivery
{
    private readonly ShmQueue? _queue;
    private readonly Ring.ReadLease _lease;

    internal ShmDelivery(ShmQueue queue, Ring.ReadLease lease, int deliveryCount)
    {
        _queue = queue;
        _lease = lease;
        DeliveryCount = deliveryCount;
    }

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The queue was disposed.</exception>
    public ReadOnlySpan<byte> Span
    {
        get
        {
            Queue.CheckHeld(_lease);
            return _lease.Payload;
        }
    }

    /// <inheritdoc/>
    public int DeliveryCount { get; }

    /// <summary>The message's length in bytes.</summary>
    public int Length => _lease.Length;

    /// <summary>True once the delivery was acked or nacked (read from the queue's shared memory).</summary>
    public bool IsSettled => !Queue.IsHeld(_lease);

    internal Ring.ReadLease Lease => _lease;

    private ShmQueue Queue => _queue ?? throw new InvalidOperationException("This ShmDelivery is default: it came from no queue.");

    /// <inheritdoc/>
    public byte[] ToArray() => Span.ToArray();

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The queue was disposed.</exception>
    public void Ack() => Queue.AckDelivery(this);

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The queue was disposed.</exception>
    public void Nack(bool requeue = true) => Queue.NackDelivery(this, requeue);

    /// <summary>Nacks the delivery (requeue) unless it was settled; does nothing for a default instance or a disposed queue.</summary>
    public void Dispose() => _queue?.ReleaseIfHeld(_lease);
}

/// <summary>A typed <see cref="ShmDelivery"/>: the value was deserialized from the message when it was taken.</summary>
/// <typeparam name="T">The type of the value.</typeparam>
public readonly struct ShmDelivery<T> : IShmDelivery
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
