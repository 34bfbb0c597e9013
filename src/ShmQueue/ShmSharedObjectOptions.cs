namespace ShmIpc;

/// <summary>
/// Settings shared by every shared-state object (<see cref="ShmSharedMemory"/>, <see cref="ShmArray{T}"/>, <see cref="ShmValue{T}"/>,
/// <see cref="ShmCounter"/>, <see cref="ShmLock"/>, <see cref="ShmEvent"/>, <see cref="ShmSemaphore"/>). Per-kind settings are in the derived classes.
/// </summary>
public class ShmSharedObjectOptions
{
    /// <summary>Whether the creator removes the object's name from the system when it is disposed. Default true.</summary>
    public bool UnlinkOnDispose { get; set; } = true;

    /// <summary>Create the segment and semaphores readable and writable by the owner's group (0660) instead of the owner only (0600).</summary>
    public bool GroupAccess { get; set; }

    /// <summary>
    /// Another user whose objects Open accepts (a uid). By default Open and OpenOrCreate refuse a segment or semaphore
    /// that another user owns, or that anyone may write. Name its owner here when that sharing is intended.
    /// </summary>
    public int? TrustedUserId { get; set; }

    /// <summary>A group whose members' objects Open accepts (a gid): see <see cref="TrustedUserId"/>.</summary>
    public int? TrustedGroupId { get; set; }

    /// <summary>How blocking calls wait: spin, then sleep on a named semaphore in slices (a dead lock holder is noticed at a slice end).</summary>
    public ShmWaitStrategy WaitStrategy { get; set; } = ShmWaitStrategy.Default;

    /// <summary>How long Open waits for a creator that is still initialising the segment. Default 5 s.</summary>
    public TimeSpan OpenTimeout { get; set; } = TimeSpan.FromSeconds(5);

    internal Memory.OwnerTrust Trust => new(TrustedUserId, TrustedGroupId);

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(WaitStrategy, nameof(WaitStrategy));
        WaitStrategy.Validate();
        if (OpenTimeout < TimeSpan.Zero && OpenTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(OpenTimeout), OpenTimeout, "The open timeout must be non-negative or infinite.");
        }
    }
}

/// <summary>Settings of a <see cref="ShmLock"/>.</summary>
public sealed class ShmLockOptions : ShmSharedObjectOptions
{
    /// <summary>
    /// Python's <c>RLock</c>: the owning thread may acquire again, and must release as many times. Fixed by the creator
    /// (stored in the segment); Open takes the creator's value and ignores this one.
    /// </summary>
    public bool Recursive { get; set; }
}

/// <summary>Settings of a <see cref="ShmEvent"/>.</summary>
public sealed class ShmEventOptions : ShmSharedObjectOptions
{
    /// <summary>
    /// One waiter per <see cref="ShmEvent.Set"/>: the waiter that sees the event set resets it. Fixed by the creator
    /// (stored in the segment); Open takes the creator's value and ignores this one.
    /// </summary>
    public bool AutoReset { get; set; }
}
