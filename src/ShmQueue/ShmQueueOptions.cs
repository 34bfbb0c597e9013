using ShmIpc.Layout;

namespace ShmIpc;

/// <summary>Settings of a <see cref="ShmQueue"/>. Capacity and maximum message length are fixed by the creator; openers take them from the segment.</summary>
public sealed partial class ShmQueueOptions : ShmObjectOptions
{
    /// <summary>Ring size in bytes: a power of two from 4 KiB to 1 GiB. Default 1 MiB. Each message takes 32 bytes of header plus its length rounded up to 32.</summary>
    public long Capacity { get; set; } = 1 << 20;

    /// <summary>
    /// The longest message carried in the ring itself, in bytes; at most about a half of <see cref="Capacity"/>. Default: 64 KiB,
    /// or less when the capacity needs it. Longer messages (up to <see cref="MaxLargeMessageLength"/>) go through a side segment.
    /// </summary>
    public int? MaxMessageLength { get; set; }

    /// <summary>
    /// The longest message this handle sends or accepts, in bytes. A message longer than the ring's maximum goes through a
    /// side segment of its own (one copy in, read in place); this caps how much shared memory one message may take.
    /// Default: <see cref="Array.MaxLength"/>. Not stored in the segment: each process sets its own.
    /// </summary>
    public int MaxLargeMessageLength { get; set; } = Array.MaxLength;

    internal int ResolveMaxMessageLength()
    {
        long largest = Capacity / 2 - QueueDescriptor.RecordHeaderSize;
        int length = MaxMessageLength ?? (int)Math.Min(64 * 1024, largest);
        if (length < 0 || length > largest || length > QueueDescriptor.MaxMessageLengthLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessageLength), length,
                $"The maximum message length must be between 0 and {Math.Min(largest, QueueDescriptor.MaxMessageLengthLimit)} bytes for a capacity of {Capacity} bytes.");
        }

        return length;
    }

    internal void ValidateLarge()
    {
        if (MaxLargeMessageLength < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxLargeMessageLength), MaxLargeMessageLength, "The largest message length must not be negative.");
        }
    }

    internal void Validate()
    {
        if (Capacity < QueueDescriptor.MinCapacity || Capacity > QueueDescriptor.MaxCapacity || (Capacity & (Capacity - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Capacity), Capacity,
                $"The capacity must be a power of two between {QueueDescriptor.MinCapacity} and {QueueDescriptor.MaxCapacity} bytes.");
        }

        ValidateCommon();
        _ = ResolveMaxMessageLength();
        ValidateLarge();
        ValidateDeliveries();
    }
}
