namespace ShmIpc.Signaling;

/// <summary>
/// A counting semaphore that other processes find by name. Waits are always bounded (the wait
/// strategy sleeps in slices), so there is no untimed wait here.
/// </summary>
internal abstract class NamedSemaphore : IDisposable
{
    protected NamedSemaphore(string osName) => OsName = osName;

    /// <summary>The name as the OS knows it (without the leading slash POSIX wants).</summary>
    public string OsName { get; }

    /// <summary>Adds one to the count, waking one waiter. A count at its maximum stays there.</summary>
    public abstract void Post();

    /// <summary>Takes one from the count, waiting up to <paramref name="timeout"/>; false when the time ran out.</summary>
    public abstract bool Wait(TimeSpan timeout);

    /// <summary>Takes one from the count if it is positive, without waiting.</summary>
    public abstract bool TryWait();

    /// <summary>The current count (diagnostics and tests: it may change as soon as it is read).</summary>
    public abstract int CurrentCount { get; }

    /// <summary>
    /// The semaphore's memory (a <c>sem_t*</c>), kept valid until <see cref="ReleaseAddress"/> even when this object is
    /// disposed meanwhile (its close is deferred): the async waiter threads watch it and may still consume a post from it.
    /// </summary>
    public abstract nint AcquireAddress();

    /// <summary>Ends one <see cref="AcquireAddress"/>; the last release after <see cref="Dispose"/> closes the handle.</summary>
    public abstract void ReleaseAddress();

    /// <summary>Closes this process's handle; the semaphore itself lives until it is unlinked and closed everywhere.</summary>
    public abstract void Dispose();
}
