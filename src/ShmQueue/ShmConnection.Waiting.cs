using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using ShmIpc.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

// The slow paths: waiting for data or space, noticing a closed or dead peer, Poll and WaitAny.
public sealed unsafe partial class ShmConnection
{
    /// <summary>WaitAny sleeps on the first connection's semaphore and polls the rest at this growing interval.</summary>
    private static readonly ShmWaitStrategy[] s_waitAnySlices =
    [
        new() { SpinDuration = TimeSpan.Zero, SleepSlice = TimeSpan.FromMilliseconds(1) },
        new() { SpinDuration = TimeSpan.Zero, SleepSlice = TimeSpan.FromMilliseconds(2) },
        new() { SpinDuration = TimeSpan.Zero, SleepSlice = TimeSpan.FromMilliseconds(4) },
    ];

    /// <summary>A deadline meaning "do not wait at all, not even spin" (the async calls' synchronous attempt).</summary>
    private const long NoWait = 0;

    private volatile bool _peerGone;
    private volatile string? _peerGoneReason;
    private LivenessThrottle _peerLiveness;

    /// <summary>
    /// True while the other end is connected: claimed by a process that is running and has not closed
    /// it (an end in the middle of a handover counts as connected). False before the second end connects.
    /// </summary>
    public bool IsPeerConnected
    {
        get
        {
            EnterOther();
            try
            {
                if (IsPeerClosedCheap())
                {
                    return false;
                }

                ulong word = (ulong)MappedAtomics.ReadInt64Acquire(_peerSlot + PipeDescriptor.OwnerOffset);
                if (word == PipeDescriptor.SharedOwnerWord)
                {
                    return PeerHoldersLeft();
                }

                return PipeDescriptor.IsHandoverWord(word)
                    || PeerLiveness.IsLiveIdentity(_segment.Platform, word);
            }
            finally
            {
                ExitOther();
            }
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until a message can be received, or the other end is gone
    /// (then <see cref="Receive()"/> throws at once, as Python's <c>poll</c> reports end-of-file as readable).
    /// Consumes nothing.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This end was disposed.</exception>
    public bool Poll(TimeSpan timeout)
    {
        SpscRing ring = _receiveRing ?? ThrowCannotReceive();
        long deadline = WaitSignal.DeadlineFrom(timeout);
        if (!EnterReceive(deadline, CancellationToken.None, lockRing: false))
        {
            return false;
        }

        try
        {
            if (IsReadable(ring))
            {
                return true;
            }

            FlushDeferredBeforeWaiting();
            var condition = new ReadableCondition(this, ring);
            bool ready = WaitReadable(ref condition, _strategy, deadline, CancellationToken.None);
            ThrowIfStopped();
            return ready;
        }
        finally
        {
            ExitReceive();
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until at least one of <paramref name="connections"/> is
    /// ready to receive (a message waits, or its peer is gone), and returns the ready ones; an empty list
    /// when the time ran out. Python's <c>multiprocessing.connection.wait</c>.
    /// </summary>
    /// <remarks>
    /// The wait sleeps on the first connection's semaphore, so a message there wakes it at once; the
    /// others are re-checked at least every 4 ms while it sleeps.
    /// </remarks>
    /// <exception cref="ArgumentException">The list is empty, holds a connection twice, or one that only sends.</exception>
    /// <exception cref="ObjectDisposedException">One of the connections was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is receiving on one of the connections.</exception>
    public static IReadOnlyList<ShmConnection> WaitAny(IReadOnlyList<ShmConnection> connections, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(connections);
        if (connections.Count == 0)
        {
            throw new ArgumentException("WaitAny needs at least one connection.", nameof(connections));
        }

        long deadline = WaitSignal.DeadlineFrom(timeout);
        for (int i = 0; i < connections.Count; i++)
        {
            ShmConnection c = connections[i] ?? throw new ArgumentException($"Connection {i} is null.", nameof(connections));
            if (c._receiveRing is null)
            {
                throw new ArgumentException($"Connection {i} ('{c.Name}') only sends; WaitAny waits for messages to receive.", nameof(connections));
            }

            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(connections[j], c))
                {
                    throw new ArgumentException($"Connection '{c.Name}' appears twice.", nameof(connections));
                }
            }
        }

        int entered = 0;
        try
        {
            for (; entered < connections.Count; entered++)
            {
                // Without waiting: two WaitAny calls entering the same connections in different orders would deadlock.
                if (!connections[entered].EnterReceive(NoWait, CancellationToken.None, lockRing: false))
                {
                    connections[entered].ThrowConcurrent("receive (or poll)");
                }
            }

            var condition = new AnyReadableCondition(connections);
            if (!condition.IsSatisfied())
            {
                // Round 0 spins as the first connection's strategy says; later rounds only sleep, each
                // for one slice on the first connection's semaphore, then re-check every connection.
                ShmConnection first = connections[0];
                for (int round = 0; ; round++)
                {
                    ShmWaitStrategy slice = round == 0
                        ? first._strategy with { SleepSlice = s_waitAnySlices[0].SleepSlice }
                        : s_waitAnySlices[Math.Min(round, s_waitAnySlices.Length - 1)];
                    long sliceEnd = Math.Min(deadline, SliceEnd(slice.SpinDuration + slice.SleepSlice));
                    if (first._receiveData!.Wait(ref condition, slice, sliceEnd, CancellationToken.None) || Stopwatch.GetTimestamp() >= deadline)
                    {
                        break;
                    }
                }
            }

            var result = new List<ShmConnection>();
            foreach (ShmConnection c in connections)
            {
                c.ThrowIfStopped();
                if (c.IsReadable(c._receiveRing!))
                {
                    result.Add(c);
                }
            }

            return result;
        }
        finally
        {
            for (int i = 0; i < entered; i++)
            {
                connections[i].ExitReceive();
            }
        }
    }

    private static long SliceEnd(TimeSpan slice) =>
        Stopwatch.GetTimestamp() + (long)(slice.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond)) + 1;

    /// <summary>Data waiting, or the peer gone (cheap checks only: no /proc lookup). A shared end looks at the shared words.</summary>
    private bool IsReadable(SpscRing ring) => (_shared ? ring.HasDataShared() : ring.HasData()) || IsPeerClosedCheap();

    /// <summary>The peer closed its end (shared flag), or an earlier check found its process dead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsPeerClosedCheap()
    {
        // Acquire pairs with the peer's release of its Closed flag in Dispose: every record it published
        // before closing is visible to the Tail load that follows a "closed" answer.
        return _peerGone || MappedAtomics.ReadInt64Acquire(_peerSlot + PipeDescriptor.ClosedOffset) != 0;
    }

    /// <summary>
    /// The caller just received a message from the peer, a sign of life: the next /proc lookup of it is put off by one
    /// liveness interval (<see cref="LivenessThrottle.Defer"/>). For receivers that sleep once per message (a pool's reader
    /// of a worker that sends a result every few ms), which otherwise look the peer up before nearly every sleep. Sleeps
    /// stay in slices and each slice after the interval looks again, so a peer that died (even before the message was
    /// received) is found within one interval plus one slice, the bound a sleeping waiter had before.
    /// </summary>
    internal void NotePeerAlive() => _peerLiveness.Defer();

    /// <summary>Looks the peer's process up (at most every few ms); marks the peer gone when it died.</summary>
    private void CheckPeerAlive()
    {
        if (_peerGone || !_peerLiveness.TryBegin())
        {
            return;
        }

        ulong word = (ulong)MappedAtomics.ReadInt64Acquire(_peerSlot + PipeDescriptor.OwnerOffset);

        if (word == PipeDescriptor.SharedOwnerWord)
        {
            // Shared by several processes: gone only when none of them (and no pending token) is left.
            if (!PeerHoldersLeft())
            {
                _peerGoneReason = "every process holding it ended without closing it";
                _peerGone = true;
                _logger?.LogWarning("Pipe {Name}: every process holding the other (shared) end died without closing it.", Name);
                ShmMetrics.RecordDeadPeer(ShmMetrics.KindPipe, Name, lost: 0);
            }

            return;
        }

        // 0: the second end has not connected yet; a handover word: the end is between two owners.
        if (!ProcessIdentity.IsIdentityWord(word))
        {
            return;
        }

        ProcessIdentity peer = ProcessIdentity.FromWord(word);
        if (_segment.Platform.IsAlive(peer, PeerLiveness.StartTimeBits))
        {
            return;
        }

        // The owner may have handed the end over and exited between our two reads: only an unchanged
        // word proves that the process holding the end is the dead one.
        if ((ulong)MappedAtomics.ReadInt64Acquire(_peerSlot + PipeDescriptor.OwnerOffset) != word)
        {
            return;
        }

        _peerGoneReason = $"its process {peer.Pid} ended without closing it";
        _peerGone = true;
        _logger?.LogWarning("Pipe {Name}: the process {Pid} holding the other end died without closing it.", Name, peer.Pid);
        ShmMetrics.RecordDeadPeer(ShmMetrics.KindPipe, Name, lost: 0);
    }

    /// <summary>The send ring is full: waits for space, the peer's end, disposal or the deadline.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WaitAndWrite(SpscRing ring, ReadOnlySpan<byte> message, long deadline, CancellationToken cancellationToken, int type = SpscRingDescriptor.MessageType)
    {
        if (deadline == NoWait)
        {
            return false;
        }

        var condition = new SpaceCondition(this, ring, message.Length);
        while (true)
        {
            // A shared end waits without its SendLock (the other senders are as stuck as we are, but they sleep on
            // the semaphore instead of spinning on the lock), and takes it again before it writes.
            if (_shared)
            {
                UnlockSendRing();
            }

            bool ready = _sendSpace!.Wait(ref condition, _strategy, deadline, cancellationToken);
            ThrowIfStopped();
            if (IsPeerClosedCheap())
            {
                ThrowPeerClosed();
            }

            if (_shared && !LockSendRing(checkState: true, deadline, cancellationToken))
            {
                return false;
            }

            if (ring.TryWrite(message, type: type))
            {
                return true;
            }

            if (!ready)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Moves every staged record into the ring (SpscRing.TryUnstage), publishing what is in the ring and waiting for
    /// room whenever it is full. False when the deadline passed first (records that did not fit stay staged).
    /// </summary>
    private bool UnstageWaiting(SpscRing ring, long deadline, CancellationToken cancellationToken)
    {
        while (!ring.TryUnstage())
        {
            if (ring.HasUnpublished)
            {
                // The receiver must see what is in the ring to make room.
                ring.Publish();
                _sendData!.Notify();
            }

            if (!WaitForSpace(ring, ring.FirstStagedLength, deadline, cancellationToken))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Waits until a <paramref name="length"/>-byte message fits (true), or the deadline passes (false).</summary>
    private bool WaitForSpace(SpscRing ring, int length, long deadline, CancellationToken cancellationToken)
    {
        if (deadline == NoWait)
        {
            return false;
        }

        if (Volatile.Read(ref _handlerThread) == Environment.CurrentManagedThreadId)
        {
            ReleaseReceivedSpace(); // see SendCore
        }

        var condition = new SpaceCondition(this, ring, length);
        if (_shared)
        {
            UnlockSendRing(); // see WaitAndWrite
        }

        bool ready = _sendSpace!.Wait(ref condition, _strategy, deadline, cancellationToken);
        ThrowIfStopped();
        if (IsPeerClosedCheap())
        {
            ThrowPeerClosed();
        }

        if (_shared && !LockSendRing(checkState: true, deadline, cancellationToken))
        {
            return false;
        }

        return ready || ring.HasSpaceFor(length);
    }

    /// <summary>
    /// The receive ring is empty: waits for a record (then peeked), the peer's end, disposal or the
    /// deadline (false). Records the peer published before it closed or died are delivered first.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WaitForRecord(SpscRing ring, long deadline, CancellationToken cancellationToken, ShmWaitStrategy? strategy = null)
    {
        if (deadline == NoWait)
        {
            return false;
        }

        FlushDeferredBeforeWaiting();

        var condition = new ReadableCondition(this, ring);
        while (true)
        {
            // A shared end waits without its ReceiveLock, so the other receivers can take what comes meanwhile.
            if (_shared)
            {
                UnlockReceiveRing();
            }

            bool ready = WaitReadable(ref condition, strategy ?? _strategy, deadline, cancellationToken);
            ThrowIfStopped();
            if (_shared && !LockReceiveRing(checkState: true, deadline, cancellationToken))
            {
                return false;
            }

            if (ring.TryPeek())
            {
                return true;
            }

            if (IsPeerClosedCheap())
            {
                // The closed flag (or the death) was seen before this last look at Tail: nothing more can come.
                if (ring.TryPeek())
                {
                    return true;
                }

                ThrowPeerClosed();
            }

            if (!ready)
            {
                return false;
            }
        }
    }

    /// <summary>How often a receive waiting while this end still has staged deferred messages retries placing them.</summary>
    private static readonly long s_stagedRetryTicks = Stopwatch.Frequency / 1000; // 1 ms

    /// <summary>
    /// Waits for data (or the peer's end, or disposal). While deferred messages of this end are still staged (the ring
    /// toward the peer was full when the receive began), it waits in 1 ms slices and tries to place them after each:
    /// the answer it waits for may need them, and the room they need comes with no signal to this wait.
    /// </summary>
    private bool WaitReadable(ref ReadableCondition condition, ShmWaitStrategy strategy, long deadline, CancellationToken cancellationToken)
    {
        while (true)
        {
            long until = _sendRing is { HasStaged: true } ? Math.Min(deadline, Stopwatch.GetTimestamp() + s_stagedRetryTicks) : deadline;
            if (_receiveData!.Wait(ref condition, strategy, until, cancellationToken))
            {
                return true;
            }

            if (until == deadline)
            {
                return false;
            }

            FlushDeferredBeforeWaiting();
        }
    }

    /// <summary>
    /// A receive about to wait first publishes what this end wrote with SendDeferred and did not flush: the answer it
    /// waits for may need that request. Only if no other thread is sending on this end right now (it publishes its own).
    /// </summary>
    private void FlushDeferredBeforeWaiting()
    {
        if (_sendRing is { } ring && (ring.HasUnpublished || ring.HasStaged) && _sendGuard.TryEnterNow())
        {
            try
            {
                if (_lifetime.IsOpen && (!_shared || LockSendRing(checkState: true, long.MaxValue, CancellationToken.None)))
                {
                    ring.TryUnstage(); // what fits now; the rest goes at the next send or flush
                    if (ring.HasUnpublished)
                    {
                        ring.Publish();
                        _sendData!.Notify();
                    }
                }
            }
            finally
            {
                ExitSend();
            }
        }
    }

    private void ThrowIfStopped()
    {
        if (!_lifetime.IsOpen)
        {
            ThrowDisposed();
        }
    }

    /// <summary>Receive side: data, the peer gone, or this end disposed.</summary>
    private readonly struct ReadableCondition(ShmConnection connection, SpscRing ring) : IWaitCondition
    {
        public bool IsSatisfied() => !connection._lifetime.IsOpen || connection.IsReadable(ring);

        public void BeforeSleep()
        {
            connection.ThrowIfStopped();
            connection.CheckPeerAlive();
        }
    }

    /// <summary>Send side: room for the message, the peer gone, or this end disposed.</summary>
    private readonly struct SpaceCondition(ShmConnection connection, SpscRing ring, int length) : IWaitCondition
    {
        public bool IsSatisfied() => !connection._lifetime.IsOpen || connection.IsPeerClosedCheap()
            || (connection._shared ? ring.HasSpaceForShared(length) : ring.HasSpaceFor(length));

        public void BeforeSleep()
        {
            connection.ThrowIfStopped();
            connection.CheckPeerAlive();
        }
    }

    /// <summary>WaitAny: any connection readable or disposed.</summary>
    private readonly struct AnyReadableCondition(IReadOnlyList<ShmConnection> connections) : IWaitCondition
    {
        public bool IsSatisfied()
        {
            foreach (ShmConnection c in connections)
            {
                if (!c._lifetime.IsOpen || c.IsReadable(c._receiveRing!))
                {
                    return true;
                }
            }

            return false;
        }

        public void BeforeSleep()
        {
            foreach (ShmConnection c in connections)
            {
                c.ThrowIfStopped();
                c.CheckPeerAlive();
            }
        }
    }
}
