using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc;

public sealed partial class ShmQueueOptions
{
    /// <summary>
    /// Acknowledged delivery (fixed by the creator; openers read it from the queue): <see cref="ShmQueue.Take(CancellationToken)"/>
    /// hands out a <see cref="ShmDelivery"/> that must be acked, and a message whose taker dies or nacks is delivered
    /// again. Default false.
    /// </summary>
    public bool Acknowledged { get; set; }

    /// <summary>
    /// In an acknowledged queue, how many times a message may be taken without an ack before it goes to the
    /// <see cref="DeadLetterQueue"/> instead of being delivered again. Fixed by the creator. Default null: unlimited.
    /// </summary>
    public int? MaxDeliveries { get; set; }

    /// <summary>
    /// The queue that poison messages go to (created, with this queue's capacity and maximum message length, if
    /// missing). Every process that takes from the queue should name the same one. Default: the queue's name + <c>".dead"</c>.
    /// </summary>
    public string? DeadLetterQueue { get; set; }

    internal void ValidateDeliveries()
    {
        if (MaxDeliveries is { } max && (max < 1 || max > QueueDescriptor.MaxDeliveryCount))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDeliveries), max, $"The maximum number of deliveries must be between 1 and {QueueDescriptor.MaxDeliveryCount}.");
        }

        if (MaxDeliveries is not null && !Acknowledged)
        {
            throw new ArgumentException("MaxDeliveries needs an acknowledged queue (Acknowledged = true).", nameof(MaxDeliveries));
        }

        if (Joinable && Acknowledged)
        {
            throw new ArgumentException("An acknowledged queue is joinable already (Ack is TaskDone): set Acknowledged or Joinable, not both.", nameof(Joinable));
        }

        if (DeadLetterQueue is not null)
        {
            ShmName.Validate(DeadLetterQueue, nameof(DeadLetterQueue));
        }
    }
}
