using Microsoft.Extensions.Logging;
using ShmIpc.Layout;

namespace ShmIpc;

/// <summary>How a pipe is made (<see cref="ShmPipe.Create"/>) or joined (<see cref="ShmPipe.Connect"/>).</summary>
public sealed class ShmPipeOptions
{
    /// <summary>The default <see cref="Capacity"/>: 256 KiB per direction.</summary>
    public const int DefaultCapacity = 256 * 1024;

    /// <summary>
    /// Bytes of ring per direction: a power of two from 1 KiB to 1 GiB. Only <see cref="ShmPipe.Create"/>
    /// uses it; a connecting end takes the creator's.
    /// </summary>
    public int Capacity { get; set; } = DefaultCapacity;

    /// <summary>
    /// The longest message, at most <c>Capacity / 2 - 8</c>. Null means <c>Capacity / 4</c>.
    /// Only <see cref="ShmPipe.Create"/> uses it; a connecting end takes the creator's.
    /// </summary>
    public int? MaxMessageLength { get; set; }

    /// <summary>
    /// True (default): both ends send and receive. False: one direction only, as Python's
    /// <c>Pipe(duplex=False)</c>: the creator's end only receives and the connector's end only sends.
    /// Only <see cref="ShmPipe.Create"/> uses it.
    /// </summary>
    public bool Duplex { get; set; } = true;

    /// <summary>Where rare events go (peer died, corruption found, a dispose that had to wait). None by default.</summary>
    public ILogger? Logger { get; set; }

    /// <summary>How blocking calls spin and sleep; also bounds how late a dead peer is noticed (one sleep slice).</summary>
    public ShmWaitStrategy WaitStrategy { get; set; } = ShmWaitStrategy.Default;

    /// <summary>Create the segment and semaphores with group read/write access (0660) instead of 0600.</summary>
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

    /// <summary>
    /// True (default): disposing the creator's end removes the pipe's names from /dev/shm (ends that are
    /// connected keep working). Connecting ends never remove anything.
    /// </summary>
    public bool UnlinkOnDispose { get; set; } = true;

    internal int EffectiveMaxMessageLength => MaxMessageLength ?? Capacity / 4;

    internal void Validate()
    {
        if (!SpscRingDescriptor.IsValidCapacity(Capacity))
        {
            throw new ArgumentOutOfRangeException(nameof(Capacity), Capacity,
                $"The capacity must be a power of two from {SpscRingDescriptor.MinCapacity} to {SpscRingDescriptor.MaxCapacity} bytes.");
        }

        int limit = SpscRingDescriptor.MaxMessageLengthFor(Capacity);
        if (MaxMessageLength is int max && (max < 0 || max > limit))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessageLength), max,
                $"The maximum message length must be from 0 to {limit} bytes (half the capacity, less the record header).");
        }

        ArgumentNullException.ThrowIfNull(WaitStrategy, nameof(WaitStrategy));
        WaitStrategy.Validate();
    }
}
