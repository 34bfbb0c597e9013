namespace ShmIpc;

// ShmWait's view of a pipe end: ready when a receive would not wait. Kept apart from the receive paths.
public sealed partial class ShmConnection : IShmWaitable
{
    /// <summary>
    /// Takes the receive guard for the whole wait: the ring's consumer-side cursor is this end's receiver's own, so
    /// nobody may receive meanwhile (as during <see cref="Poll"/>). Publishes deferred sends first, as Poll does:
    /// the message awaited may be the answer to them.
    /// </summary>
    void IShmWaitable.BeginWait()
    {
        if (_receiveRing is null)
        {
            throw new ArgumentException($"Pipe end '{Name}' only sends; a wait looks for messages to receive.", "items");
        }

        // Another thread of this process receiving on this end now: refused, as the pipe's own WaitAny does.
        if (!EnterReceive(NoWait, CancellationToken.None, lockRing: false))
        {
            ThrowConcurrent("receive (or wait)");
        }

        try
        {
            FlushDeferredBeforeWaiting();
        }
        catch
        {
            ExitReceive();
            throw;
        }
    }

    /// <summary>A message waits, or the peer closed its end or died (the process is looked up at most every few ms). Consumes nothing.</summary>
    bool IShmWaitable.PollReady()
    {
        ThrowIfStopped();
        if (IsReadable(_receiveRing!))
        {
            return true;
        }

        CheckPeerAlive();
        return IsPeerClosedCheap();
    }

    void IShmWaitable.EndWait() => ExitReceive();
}
