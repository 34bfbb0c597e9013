namespace ShmIpc;

/// <summary>
/// Settings shared by every shared-state object (<see cref="ShmSharedMemory"/>, <see cref="ShmArray{T}"/>, <see cref="ShmValue{T}"/>,
/// <see cref="ShmCounter"/>, <see cref="ShmLock"/>, <see cref="ShmEvent"/>, <see cref="ShmSemaphore"/>). Per-kind settings are in the derived classes.
/// </summary>
public class ShmSharedObjectOptions : ShmObjectOptions
{
    internal void Validate() => ValidateCommon();
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
