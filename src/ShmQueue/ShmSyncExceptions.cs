namespace ShmIpc;

/// <summary>
/// The process that held a <see cref="ShmLock"/> died without releasing it. Thrown by the acquire that took the lock over:
/// <b>the caller holds the lock</b> (as with .NET's <see cref="AbandonedMutexException"/>), and should check the state the
/// lock protects, repair it, then release.
/// </summary>
public sealed class ShmLockAbandonedException : AbandonedMutexException
{
    /// <summary>Creates the exception for a lock and the pid of its dead holder.</summary>
    public ShmLockAbandonedException(string name, int deadOwnerPid, string detail)
        : base($"Lock '{name}' was abandoned: {detail}. This thread now holds it; check the state it protects, then release it.")
    {
        Name = name;
        DeadOwnerPid = deadOwnerPid;
    }

    /// <summary>The name of the lock (or of the array or value it belongs to).</summary>
    public string Name { get; }

    /// <summary>The pid of the process that held the lock when it died (0 when the owner word was not a valid identity).</summary>
    public int DeadOwnerPid { get; }
}

/// <summary>
/// A <see cref="ShmBarrier"/> is broken (Python's <c>BrokenBarrierError</c>): a waiter's time ran out, a participant died before
/// arriving, or the barrier was reset while this thread waited. Every waiter of the phase gets it; <see cref="ShmBarrier.Reset"/> mends it.
/// </summary>
public sealed class ShmBarrierBrokenException : InvalidOperationException
{
    /// <summary>Creates the exception for a barrier and a reason.</summary>
    public ShmBarrierBrokenException(string name, string detail)
        : base($"Barrier '{name}' is broken: {detail}.")
    {
        Name = name;
    }

    /// <summary>The name of the barrier.</summary>
    public string Name { get; }
}
