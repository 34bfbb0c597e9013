namespace ShmIpc;

// Acknowledged delivery of typed values: the value is deserialized from the message in place when it is taken.
public sealed partial class ShmQueue<T>
{
    /// <summary>The number of values taken and not yet settled (<see cref="ShmQueue.InFlight"/>).</summary>
    public int InFlight => Queue.InFlight;

    /// <summary>Takes the next value for processing, waiting while the queue is empty (<see cref="ShmQueue.Take(CancellationToken)"/>).</summary>
    /// <inheritdoc cref="ShmQueue.Take(CancellationToken)" path="/exception"/>
    public ShmDelivery<T> Take(CancellationToken cancellationToken = default) => Typed(Queue.Take(cancellationToken));

    /// <summary>Takes the next value, waiting up to <paramref name="timeout"/>.</summary>
    /// <inheritdoc cref="ShmQueue.Take(TimeSpan)" path="/exception"/>
    public ShmDelivery<T> Take(TimeSpan timeout) => Typed(Queue.Take(timeout));

    /// <summary>Takes the next value, waiting up to <paramref name="timeout"/>. False when the time ran out.</summary>
    public bool TryTake(out ShmDelivery<T> delivery, TimeSpan timeout)
    {
        bool taken = Queue.TryTake(out ShmDelivery bytes, timeout);
        delivery = taken ? Typed(bytes) : default;
        return taken;
    }

    /// <summary>Takes the next value, completing when one is there.</summary>
    public async ValueTask<ShmDelivery<T>> TakeAsync(CancellationToken cancellationToken = default) =>
        Typed(await Queue.TakeAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Waits until every value put so far is finished (<see cref="ShmQueue.Join(CancellationToken)"/>).</summary>
    public void Join(CancellationToken cancellationToken = default) => Queue.Join(cancellationToken);

    /// <summary>Waits up to <paramref name="timeout"/> until every value put so far is finished. False when the time ran out.</summary>
    public bool Join(TimeSpan timeout) => Queue.Join(timeout);

    private ShmDelivery<T> Typed(ShmDelivery delivery)
    {
        try
        {
            return new ShmDelivery<T>(delivery, _serializer.Deserialize(delivery.Span));
        }
        catch
        {
            // A value that cannot be read is given back rather than lost; MaxDeliveries bounds how often.
            delivery.Nack();
            throw;
        }
    }
}
