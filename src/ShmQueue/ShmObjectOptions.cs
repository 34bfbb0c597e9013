using Microsoft.Extensions.Logging;

namespace ShmIpc;

/// <summary>
/// The settings every named shared-memory object has, whatever it is: where it logs, how its blocking calls wait, who
/// may open it, whether its creator removes its name, and how long Open waits for a creator still setting it up.
/// <see cref="ShmQueueOptions"/>, <see cref="ShmPipeOptions"/> and <see cref="ShmSharedObjectOptions"/> add what is
/// particular to their kind.
/// </summary>
public abstract class ShmObjectOptions
{
    /// <summary>Where the object reports rare events: dead peers, lost messages, corruption, a dispose that had to wait. Default: nowhere.</summary>
    public ILogger? Logger { get; set; }

    /// <summary>How blocking calls wait: spin, then sleep on a named semaphore in slices; a dead peer is noticed at the end of a slice at the latest.</summary>
    public ShmWaitStrategy WaitStrategy { get; set; } = ShmWaitStrategy.Default;

    /// <summary>Create the segment and semaphores readable and writable by the owner's group (0660) instead of the owner only (0600).</summary>
    public bool GroupAccess { get; set; }

    /// <summary>
    /// Whether the creator removes the object's names from the system when it is disposed (processes that have it open
    /// keep using it). Default true. Openers never remove anything.
    /// </summary>
    public bool UnlinkOnDispose { get; set; } = true;

    /// <summary>How long Open waits for a creator that is still initialising the segment. Default 5 s (2 s for a pipe).</summary>
    public TimeSpan OpenTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Another user whose objects Open accepts (a uid). By default Open and OpenOrCreate refuse a segment or semaphore
    /// that another user owns, or that anyone may write: a name someone else created first could read or forge what
    /// this process sends. Name its owner here when that sharing is intended.
    /// </summary>
    public int? TrustedUserId { get; set; }

    /// <summary>A group whose members' objects Open accepts (a gid): see <see cref="TrustedUserId"/>.</summary>
    public int? TrustedGroupId { get; set; }

    /// <summary>Default settings (for derived options types).</summary>
    protected ShmObjectOptions()
    {
    }

    internal Memory.OwnerTrust Trust => new(TrustedUserId, TrustedGroupId);

    /// <summary>Checks the settings every kind shares.</summary>
    /// <exception cref="ArgumentNullException"><see cref="WaitStrategy"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The wait strategy or <see cref="OpenTimeout"/> is out of range.</exception>
    internal void ValidateCommon()
    {
        ArgumentNullException.ThrowIfNull(WaitStrategy, nameof(WaitStrategy));
        WaitStrategy.Validate();
        if (OpenTimeout < TimeSpan.Zero && OpenTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(OpenTimeout), OpenTimeout, "The open timeout must be non-negative or infinite.");
        }
    }
}
