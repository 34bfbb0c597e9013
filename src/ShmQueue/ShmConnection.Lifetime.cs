using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using ShmIpc.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

// Attaching to an end, closing, handover; the guards that keep the mapping alive while a call uses it are in
// ShmConnection.Guards.cs (the Design below covers both: Stop is what the guards answer to).
//
// Design (process-local, no shared memory involved): the end's lifetime is an EndpointLifetime (Open -> Closed by
// Dispose, Open -> HandedOver by ReleaseForHandover; its remarks give the enter/stop protocol), shared with ShmQueue.
// What the pipe adds:
// - A call that sends or receives takes an exclusive guard instead of the lifetime's counter: _sendGuard /
//   _receiveGuard, each a BiasedGuard (the thread that keeps sending, or receiving, enters with plain stores; another
//   thread takes its lock by CAS and, if the guard was biased to someone else, revokes that bias with one process-wide
//   barrier; a second concurrent sender or receiver of this process waits in WaitForGuard: spinning, then yielding and
//   sleeping 1 ms at a time, until the guard is free, the end stops or its deadline passes; each ring has one producer
//   and one consumer per process at a time), then reads the state and backs out if it is not Open. Other calls enter the lifetime's counter (EnterOther). On a shared end the guard is followed by the ring's
//   shared lock (ShmConnection.Shared.cs), which orders this process against the other holders.
// - Stop waits until both guards and the counter are free (EndpointLifetime.WaitUntilIdle), posting the semaphores
//   this end's own waiters sleep on. The state CAS is a full fence, and so is a guard's CAS; a biased entry has no
//   fence of its own, so the stopper runs a process-wide barrier after its CAS (BiasedGuard.BarrierBeforeIdleCheck):
//   either way the stopper sees the guard taken (and waits) or the caller sees the new state (and backs out).
// - A waiter re-checks the state in its wait condition, so it leaves within its spin or at the post.
public sealed unsafe partial class ShmConnection
{
    private const string TokenPrefix = "shmpipe1";

    private readonly NamedSemaphore[] _semaphores;

    /// <summary>The largest count among this pipe's semaphores (tests check that posts never pile up).</summary>
    internal int MaxSemaphoreCount => _semaphores.Max(static s => s.CurrentCount);
    private EndpointLifetime _lifetime;
    private BiasedGuard _sendGuard;
    private BiasedGuard _receiveGuard;

    private ShmConnection(ShmSegment segment, PipeDescriptor.Geometry geometry, int end, ShmPipeOptions options, bool unlinkOnDispose, ulong ownerWord, NamedSemaphore[] semaphores)
    {
        _segment = segment;
        _end = end;
        _maxMessageLength = geometry.MaxMessageLength;
        _sides = new SideSegments.SideSegmentCache(segment, options.Trust, options.MaxLargeMessageLength);
        _strategy = options.WaitStrategy;
        _logger = options.Logger;
        _unlinkOnDispose = unlinkOnDispose;
        _ownerWord = ownerWord;
        _semaphores = semaphores;
        byte* control = segment.Control;
        _ownSlot = control + PipeDescriptor.EndSlotOffset(end);
        _peerSlot = control + PipeDescriptor.EndSlotOffset(1 - end);

        // End e receives from ring e and sends on ring 1 - e, where those exist (see PipeDescriptor).
        int receiveRing = end;
        int sendRing = 1 - end;
        bool asymmetric = PipeDescriptor.HasAsymmetricFence(control); // LAYOUT §4, SleeperFence
        if (receiveRing < geometry.RingCount)
        {
            _receiveRing = NewRing(segment, geometry, receiveRing);
            _receiveData = NewSignal(control, receiveRing, SpscRingDescriptor.DataSleepersOffset, semaphores[PipeDescriptor.DataSemaphore(receiveRing)], asymmetric);
            _receiveSpace = NewSignal(control, receiveRing, SpscRingDescriptor.SpaceSleepersOffset, semaphores[PipeDescriptor.SpaceSemaphore(receiveRing)], asymmetric);
        }

        if (sendRing < geometry.RingCount)
        {
            _sendRing = NewRing(segment, geometry, sendRing);
            _sendData = NewSignal(control, sendRing, SpscRingDescriptor.DataSleepersOffset, semaphores[PipeDescriptor.DataSemaphore(sendRing)], asymmetric);
            _sendSpace = NewSignal(control, sendRing, SpscRingDescriptor.SpaceSleepersOffset, semaphores[PipeDescriptor.SpaceSemaphore(sendRing)], asymmetric);
        }
    }

    private static SpscRing NewRing(ShmSegment segment, PipeDescriptor.Geometry geometry, int ring) =>
        new(segment.Control + PipeDescriptor.RingControlOffset(ring), segment.Data + PipeDescriptor.RingDataOffset(ring, geometry.Capacity),
            geometry.Capacity, geometry.MaxMessageLength, segment.Name);

    private static WaitSignal NewSignal(byte* control, int ring, int sleepersOffset, NamedSemaphore semaphore, bool asymmetricFence) =>
        new((int*)(control + PipeDescriptor.RingControlOffset(ring) + sleepersOffset), semaphore, asymmetricFence) { MetricKind = ShmMetrics.KindPipe };

    /// <summary>
    /// Builds the connection for <paramref name="end"/> of an opened, validated segment. Unless
    /// <paramref name="claimFrom"/> is null (the creator, whose word is already in place), the end is
    /// claimed by CAS of its owner word from <paramref name="claimFrom"/> to <paramref name="claimedWord"/>,
    /// after everything that can fail is done, so a failed attach never leaves the end claimed.
    /// On failure the segment is disposed (and unlinked when this is the creator).
    /// </summary>
    internal static ShmConnection Attach(ShmSegment segment, PipeDescriptor.Geometry geometry, int end, ShmPipeOptions options,
        bool unlinkOnDispose, ulong? claimFrom, ulong claimedWord)
    {
        var semaphores = new List<NamedSemaphore>();
        try
        {
            for (int i = 0; i < 2 * geometry.RingCount; i++)
            {
                semaphores.Add(segment.OpenSemaphore(i));
            }

            var connection = new ShmConnection(segment, geometry, end, options, unlinkOnDispose, claimedWord, semaphores.ToArray());
            if (claimFrom is ulong expected)
            {
                byte* owner = connection._ownSlot + PipeDescriptor.OwnerOffset;
                ulong seen = (ulong)MappedAtomics.CompareExchangeInt64(owner, (long)claimedWord, (long)expected);
                if (seen != expected)
                {
                    throw ClaimRefused(segment.Name, end, expected, seen);
                }
            }

            options.Logger?.LogDebug("Pipe {Name}: end {End} attached in process {Pid}.", segment.Name, end, Environment.ProcessId);
            return connection;
        }
        catch
        {
            foreach (NamedSemaphore semaphore in semaphores)
            {
                semaphore.Dispose();
            }

            if (segment.IsCreator && claimFrom is null)
            {
                segment.Unlink();
            }

            segment.Dispose();
            throw;
        }
    }

    private static InvalidOperationException ClaimRefused(string name, int end, ulong expected, ulong seen)
    {
        string holder = ProcessIdentity.IsIdentityWord(seen)
            ? $"process {ProcessIdentity.FromWord(seen).Pid}"
            : PipeDescriptor.IsHandoverWord(seen) ? "a pending handover" : $"owner word 0x{seen:X16}";
        holder = seen == PipeDescriptor.SharedOwnerWord ? "several processes sharing it" : holder;
        return expected == 0
            ? new InvalidOperationException($"Pipe '{name}' already has its second end connected (held by {holder}); a pipe joins exactly two ends.")
            : new InvalidOperationException($"End {end} of pipe '{name}' is not waiting for this handover token (held by {holder}); a token can be used once.");
    }

    // ---------------------------------------------------------------- closing

    /// <summary>Closes this end: same as <see cref="Dispose"/>.</summary>
    public void Close() => Dispose();

    /// <summary>
    /// Closes this end. The peer receives what was sent before, then <see cref="ShmPeerClosedException"/>.
    /// Calls blocked on this end in other threads end with <see cref="ObjectDisposedException"/>. The
    /// creator's end also removes the pipe's names (see <see cref="ShmObjectOptions.UnlinkOnDispose"/>).
    /// </summary>
    public void Dispose()
    {
        if (Volatile.Read(ref _handlerThread) == Environment.CurrentManagedThreadId)
        {
            // Called from a ReceiveMany handler, which holds the receive guard: waiting for it to let go would wait
            // on ourselves. The batch stops and ReceiveMany closes the end once it has left the mapping.
            _disposeInHandler = true;
            return;
        }

        FlushStagedBeforeClosing(throwIfLeft: false);
        if (!Stop(EndpointLifetime.Closed, out bool drained))
        {
            return;
        }

        bool last = !_shared;
        if (drained)
        {
            // Messages sent with SendDeferred and never flushed are delivered too: published before "closed". Those
            // still staged (another thread was sending while we closed) go in if they fit now.
            PlaceStagedAfterStop();

            // Release pairs with the peer's acquire in IsPeerClosedCheap: every record we published
            // (Tail stores above) is visible before the peer acts on "closed". A shared end is closed for the
            // peer only by the last of its holders (ShmConnection.Shared.cs).
            last = last || LeaveHolders();
            if (last)
            {
                MappedAtomics.WriteInt64Release(_ownSlot + PipeDescriptor.ClosedOffset, 1);
            }

            // Wake the peer if it sleeps in a receive (our send ring) or a send (our receive ring).
            _sendData?.Notify();
            _receiveSpace?.Notify();
        }

        // A shared end removes the names only with its last holder (a token not yet used still needs them).
        Release(drained, unlink: _unlinkOnDispose && last);
        _logger?.LogDebug("Pipe {Name}: end {End} closed.", Name, _end);
    }

    /// <summary>How long closing (or handing over) an end waits for room for its staged deferred messages.</summary>
    private static readonly TimeSpan s_stagedFlushTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Before this end closes or moves: its staged deferred messages go into the ring, waiting for room up to
    /// <see cref="s_stagedFlushTimeout"/> (the peer reading). Skipped when another thread is sending (an error of the
    /// caller's: its messages may be lost) or the peer is gone (they die with it).
    /// </summary>
    private void FlushStagedBeforeClosing(bool throwIfLeft)
    {
        if (_sendRing is not { HasStaged: true } ring || !_lifetime.IsOpen
            || !_sendGuard.TryEnterNow())
        {
            return;
        }

        try
        {
            long deadline = WaitSignal.DeadlineFrom(s_stagedFlushTimeout);
            if (!_shared || LockSendRing(checkState: true, deadline, CancellationToken.None))
            {
                UnstageWaiting(ring, deadline, CancellationToken.None);
            }
        }
#pragma warning disable CA1031 // Closing goes on whatever happened here (peer gone, a concurrent Dispose, a corrupt Head).
        catch (Exception e)
#pragma warning restore CA1031
        {
            _logger?.LogDebug(e, "Pipe {Name}: deferred messages could not be placed before closing end {End}.", Name, _end);
        }
        finally
        {
            if (ring.HasUnpublished)
            {
                ring.Publish();
                _sendData!.Notify();
            }

            ExitSend();
        }

        if (throwIfLeft && ring.HasStaged)
        {
            throw new InvalidOperationException($"End {_end} of pipe '{Name}' holds deferred messages the full ring had no room for within {s_stagedFlushTimeout}; it was not handed over.");
        }
    }

    /// <summary>
    /// After Stop drained every call (so the mapping is still ours and no thread sends): places what is still staged if
    /// it fits now, and publishes. Staged messages that find no room are lost, and said so in the log.
    /// </summary>
    private void PlaceStagedAfterStop()
    {
        if (_sendRing is not { } ring)
        {
            return;
        }

        if (_shared && !ring.HasStaged)
        {
            return; // a shared holder published everything when it let go of SendLock
        }

        try
        {
            // A shared end needs SendLock to write (no other thread of ours is sending: Stop drained them).
            if (!_shared || LockSendRing(checkState: false, WaitSignal.DeadlineFrom(s_stagedFlushTimeout), CancellationToken.None))
            {
                ring.TryUnstage();
            }
        }
        catch (ShmCorruptionException e)
        {
            _logger?.LogWarning(e, "Pipe {Name}: deferred messages of end {End} were not placed: the ring is corrupt.", Name, _end);
        }

        if (ring.HasStaged)
        {
            _logger?.LogWarning("Pipe {Name}: end {End} closed with deferred messages the full ring had no room for; they are lost.", Name, _end);
        }

        if (ring.HasUnpublished)
        {
            ring.Publish();
        }

        UnlockSendRing();
    }

    /// <summary>Same as <see cref="Dispose"/>.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }

    /// <summary>
    /// Moves <paramref name="newState"/> in and waits for the calls of other threads to leave. False when
    /// already stopped. <paramref name="drained"/> is false when they did not leave in time: the mapping
    /// must then stay (a leak, logged) rather than be unmapped under them.
    /// </summary>
    private bool Stop(int newState, out bool drained)
    {
        drained = true;
        if (!_lifetime.TryStop(newState))
        {
            return false;
        }

        StopAsyncWaits(); // pending async calls fault and let go of their guards first (ShmConnection.Async.cs)
        BiasedGuard.BarrierBeforeIdleCheck(); // a biased entry's store is seen below, or it sees the new state (Design)

        // Our own waiters sleep on these two semaphores only (the peer sleeps on the other two).
        drained = EndpointLifetime.WaitUntilIdle(
            () => _sendGuard.IsHeld || _receiveGuard.IsHeld || _lifetime.Calls != 0,
            () =>
            {
                _receiveData?.PostOnce();
                _sendSpace?.PostOnce();
            });
        if (!drained)
        {
            _logger?.LogError("Pipe {Name}: a call on another thread did not leave within {Timeout}; the mapping is left in place.", Name, EndpointLifetime.DrainTimeout);
        }

        return true;
    }

    private void Release(bool drained, bool unlink)
    {
        if (unlink)
        {
            _segment.Unlink();
        }

        if (!drained)
        {
            return;
        }

        foreach (NamedSemaphore semaphore in _semaphores)
        {
            semaphore.Dispose();
        }

        _sides.Dispose();
        _segment.Dispose();
    }

    // --------------------------------------------------------------- handover

    /// <summary>
    /// Gives up this end without closing it, so that another process can take it with
    /// <see cref="AcquireHandover"/>. The peer sees the end as still connected meanwhile. This object is
    /// unusable afterwards (and no longer removes the pipe's names; the acquirer of the creator's end does).
    /// </summary>
    /// <returns>A token naming the pipe, the end and this handover; pass it to the other process.</returns>
    /// <exception cref="ObjectDisposedException">This end was already disposed or handed over.</exception>
    /// <exception cref="InvalidOperationException">A call on another thread did not finish (the end stays here, unusable); or
    /// deferred messages found no room in the ring within a second (the end stays here, usable).</exception>
    internal string ReleaseForHandover()
    {
        if (Volatile.Read(ref _handlerThread) == Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException($"End {_end} of pipe '{Name}' cannot be handed over from inside a ReceiveMany handler on it: return from the handler first.");
        }

        FlushStagedBeforeClosing(throwIfLeft: true);

        if (Volatile.Read(ref _shared))
        {
            // A shared end moves as a share that this holder follows with its own close: the token's reserved
            // Holders word keeps the end open for the peer until the newcomer attaches.
            string shareToken = Share();
            Dispose();
            return shareToken;
        }

        if (!Stop(EndpointLifetime.HandedOver, out bool drained))
        {
            ThrowDisposed();
        }

        if (!drained)
        {
            // A thread still inside a call could write Head or Tail after the new owner starts: keep the end here.
            throw new InvalidOperationException($"A call on another thread did not leave end {_end} of pipe '{Name}' within {EndpointLifetime.DrainTimeout}; the end was not handed over.");
        }

        // Deferred messages travel with the end: placed and published now, before the new owner takes over Tail.
        PlaceStagedAfterStop();
        _sendData?.Notify();

        ulong marker = NewHandoverWord();
        // CAS (full fence): our last Head/Tail stores are visible to whoever claims the end from the marker.
        ulong seen = (ulong)MappedAtomics.CompareExchangeInt64(_ownSlot + PipeDescriptor.OwnerOffset, (long)marker, (long)_ownerWord);
        Release(drained, unlink: false);
        if (seen != _ownerWord)
        {
            throw new ShmCorruptionException(Name, 0, $"the owner word of end {_end} changed to 0x{seen:X16} while this process held it");
        }

        return string.Join(':', TokenPrefix, _end.ToString(CultureInfo.InvariantCulture), marker.ToString("x16", CultureInfo.InvariantCulture),
            _unlinkOnDispose ? "1" : "0", Name);
    }

    /// <summary>
    /// Takes over the end that another process released with <see cref="ReleaseForHandover"/>. Options give
    /// the wait strategy and logger; <see cref="ShmObjectOptions.UnlinkOnDispose"/> false declines the duty of
    /// removing the pipe's names that the creator's end carries.
    /// </summary>
    /// <exception cref="FormatException">The token is not one ReleaseForHandover made.</exception>
    /// <exception cref="InvalidOperationException">The token was used already, or the end is held by someone else.</exception>
    internal static ShmConnection AcquireHandover(string token, ShmPipeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (token.StartsWith(ShareTokenPrefix + ":", StringComparison.Ordinal))
        {
            return AttachShared(token, options);
        }

        string[] parts = token.Split(':', 5);
        if (parts.Length != 5 || parts[0] != TokenPrefix
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int end) || end is not (0 or 1)
            || !ulong.TryParse(parts[2], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong marker) || !PipeDescriptor.IsHandoverWord(marker)
            || parts[3] is not ("0" or "1"))
        {
            throw new FormatException($"'{token}' is not a pipe handover token.");
        }

        options ??= new ShmPipeOptions();
        ShmSegment segment = ShmPipe.OpenValidated(parts[4], options, out PipeDescriptor.Geometry geometry);

        bool unlink = parts[3] == "1" && options.UnlinkOnDispose;
        return Attach(segment, geometry, end, options, unlink, claimFrom: marker, claimedWord: SharedMemoryPlatform.Current.CurrentProcess.ToWord());
    }

    private static ulong NewHandoverWord()
    {
        ulong nonce;
        do
        {
            nonce = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) >> 5;
        }
        while (nonce == 0);

        return WordTagDescriptor.HandoverWord(nonce);
    }
}
