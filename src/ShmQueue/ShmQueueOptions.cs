using Microsoft.Extensions.Logging;
using ShmIpc.Layout;

namespace ShmIpc;

/// <summary>Settings of a <see cref="ShmQueue"/>. Capacity and maximum message length are fixed by the creator; openers take them from the segment.</summary>
public sealed class ShmQueueOptions
{
    /// <summary>Ring size in bytes: a power of two from 4 KiB to 1 GiB. Default 1 MiB. Each message takes 32 bytes of header plus its length rounded up to 32.</summary>
    public long Capacity { get; set; } = 1 << 20;

    /// <summary>The longest message accepted, in bytes; at most about a half of <see cref="Capacity"/>. Default: 64 KiB, or less when the capacity needs it.</summary>
    public int? MaxMessageLength { get; set; }

    /// <summary>Where the queue reports dead peers, lost messages and corruption. Default: nowhere.</summary>
    public ILogger? Logger { get; set; }

    /// <summary>Whether the creator removes the queue's name from the system when it is disposed. Default true.</summary>
    public bool UnlinkOnDispose { get; set; } = true;

    /// <summary>Create the segment and semaphores readable and writable by the owner's group (0660) instead of the owner only (0600).</summary>
    public bool GroupAccess { get; set; }

    /// <summary>
    /// Another user whose objects Open accepts (a uid). By default Open and OpenOrCreate refuse a segment or semaphore
    /// that another user owns, or that anyone may write: a name someone else created first could read or forge what
    /// this process sends. Name its owner here when that sharing is intended.
    /// </summary>
    public int? TrustedUserId { get; set; }

    /// <summary>A group whose members' objects Open accepts (a gid): see <see cref="TrustedUserId"/>.</summary>
    public int? TrustedGroupId { get; set; }

    internal Memory.OwnerTrust Trust => new(TrustedUserId, TrustedGroupId);

    /// <summary>How blocking calls wait: spin, then sleep on a named semaphore in slices.</summary>
    public ShmWaitStrategy WaitStrategy { get; set; } = ShmWaitStrategy.Default;

    /// <summary>How long Open waits for a creator that is still initialising the segment. Default 5 s.</summary>
    public TimeSpan OpenTimeout { get; set; } = TimeSpan.FromSeconds(5);

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

    internal void Validate()
    {
        if (Capacity < QueueDescriptor.MinCapacity || Capacity > QueueDescriptor.MaxCapacity || (Capacity & (Capacity - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Capacity), Capacity,
                $"The capacity must be a power of two between {QueueDescriptor.MinCapacity} and {QueueDescriptor.MaxCapacity} bytes.");
        }

        ArgumentNullException.ThrowIfNull(WaitStrategy, nameof(WaitStrategy));
        WaitStrategy.Validate();
        _ = ResolveMaxMessageLength();
    }
}
