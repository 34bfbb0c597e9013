using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

// Shared ends: several processes (each with its own ShmConnection) holding the same end, as Python's Connection passed
// to several children.
//
// Design:
// - Mode. An end is exclusive (one holder: today's single-producer/single-consumer fast path, no lock) or shared
//   (Flags bit e set, Owner = SharedOwnerWord, holders listed in the end's Holders words). Transitions:
//
//     from        event                                     to       who
//     ---------   ---------------------------------------   ------   ---------------------------------------------
//     exclusive   Share() (ShmProcess passing the end)      shared   the end's only holder, inside both its guards
//     shared      Share() again                             shared   any holder (claims one more Holders word)
//     shared      never reset                               -        -
//
//   The exclusive -> shared step runs while its maker holds this end's send and receive guards, so no thread of its
//   process is inside a call, and no other process holds the end at all: nobody can be mid-send without the lock.
//   It writes, in order: its own identity into a Holders word (CAS), Flags |= bit e (CAS), Owner: identity ->
//   SharedOwnerWord (CAS); only then does it claim a Holders word for the token (CAS 0 -> a handover word). Every
//   CAS is a full fence and the newcomer reads Flags after its own CAS on that handover word, so it always sees the
//   end shared: the process-local _shared copy is exact for every holder.
// - Locks. In shared mode a call that produces on ring r takes r's SendLock, one that consumes takes r's ReceiveLock
//   (OwnerWordLock: CAS 0 -> identity word; a holder proved dead by pid + start time is taken over by CAS from its
//   word, never on a timeout). Right after taking it, the ring reloads the shared Tail/Head (SyncProducer/Consumer:
//   the process-local copies are stale once another process had the lock); before letting go, everything written is
//   published (Tail) and everything read is released (Head). Waits for space or data happen without the lock.
//   Lock order: ReceiveLock before SendLock (a ReceiveMany handler may send; nothing that holds a SendLock takes a
//   ReceiveLock), so two holders never wait on each other.
// - Crashes. A sender killed holding SendLock published whole records or nothing (Tail is the commit point), so the
//   next sender takes over and writes from the shared Tail. A receiver killed holding ReceiveLock had not moved Head
//   past the record in hand: the next receiver gets it (a killed receiver's message is not lost).
// - Holders and the peer. The peer of a shared end is gone when Closed = 1 or when no Holders word is a live
//   identity or a pending token (two equal scans in a row: a live holder can add a token only while it is listed).
//   A holder that closes clears its word (CAS identity -> 0), then scans: when none is left (or only dead ones), it
//   stores Closed = 1 (release), so the peer learns at once. Two last holders closing together both see the other's
//   clearing (CAS then loads, each a full fence: one of them scans after both CASes) and both store 1: harmless.
//   A token never redeemed (its child died before attaching) keeps the end "connected", as a handover does.
// - Names. The creator's duty of removing the pipe's names travels in the token (as in a handover) and is carried
//   out by whichever holder of that end closes last: a child may attach after the parent closed its own copy.
public sealed unsafe partial class ShmConnection
{
    private const string ShareTokenPrefix = "shmpipe2";

    /// <summary>This end is shared (exact: see the design above). Read plainly after a guard's CAS.</summary>
    private bool _shared;

    /// <summary>The Holders word this connection occupies while the end is shared, else -1.</summary>
    private int _holderSlot = -1;

    /// <summary>The SendLock / ReceiveLock of a shared end is ours now (touched only by the guard's holder).</summary>
    private bool _sendLockHeld;
    private bool _receiveLockHeld;

    /// <summary>True when this end is shared by several holders (tests, diagnostics).</summary>
    internal bool IsShared => Volatile.Read(ref _shared);

    // ------------------------------------------------------------------ locks

    private bool LockSendRing(bool checkState, long deadline, CancellationToken cancellationToken)
    {
        SpscRing ring = _sendRing!;
        if (!EnterSharedLock(ring.SendLockWord, "send", checkState, deadline, cancellationToken))
        {
            return false;
        }

        _sendLockHeld = true;
        try
        {
            ring.SyncProducer();
        }
        catch
        {
            UnlockSendRing();
            throw;
        }

        return true;
    }

    /// <summary>Publishes what this holder wrote, lets go of SendLock and tells a sleeping receiver.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // kept out of ExitSend/ExitReceive, which every exclusive call inlines
    private void UnlockSendRing()
    {
        if (!_sendLockHeld)
        {
            return;
        }

        SpscRing ring = _sendRing!;
        bool published = ring.HasUnpublished;
        if (published)
        {
            ring.Publish(); // release: before the lock is let go, so the next holder's SyncProducer sees it
        }

        _sendLockHeld = false;
        OwnerWordLock.Exit(ring.SendLockWord, _ownerWord);
        if (published)
        {
            _sendData!.Notify();
        }
    }

    private bool LockReceiveRing(bool checkState, long deadline, CancellationToken cancellationToken)
    {
        SpscRing ring = _receiveRing!;
        if (!EnterSharedLock(ring.ReceiveLockWord, "receive", checkState, deadline, cancellationToken))
        {
            return false;
        }

        _receiveLockHeld = true;
        try
        {
            ring.SyncConsumer();
        }
        catch
        {
            UnlockReceiveRing();
            throw;
        }

        return true;
    }

    /// <summary>Releases what this holder consumed, lets go of ReceiveLock and tells a sleeping sender.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void UnlockReceiveRing()
    {
        if (!_receiveLockHeld)
        {
            return;
        }

        SpscRing ring = _receiveRing!;
        bool released = ring.UnreleasedBytes > 0;
        if (released)
        {
            ring.PublishHead();
        }

        _receiveLockHeld = false;
        OwnerWordLock.Exit(ring.ReceiveLockWord, _ownerWord);
        if (released)
        {
            _receiveSpace!.Notify();
        }
    }

    /// <summary>
    /// Takes a shared end's lock word: CAS 0 -> our identity; while a live process holds it, spins, then yields and
    /// sleeps a millisecond at a time (holders keep it for one copy, or one ReceiveMany batch); a holder found dead
    /// (looked up at most every <see cref="PeerLiveness.CheckIntervalMs"/>) is taken over. False at the deadline.
    /// </summary>
    /// <exception cref="ShmCorruptionException">The word is neither 0 nor an identity word.</exception>
    private bool EnterSharedLock(byte* word, string what, bool checkState, long deadline, CancellationToken cancellationToken)
    {
        if (OwnerWordLock.TryEnter(word, _ownerWord))
        {
            return true;
        }

        var spinner = new SpinWait();
        var liveness = default(LivenessThrottle);
        while (true)
        {
            ulong holder = OwnerWordLock.Holder(word);
            if (holder == 0)
            {
                if (OwnerWordLock.TryEnter(word, _ownerWord))
                {
                    return true;
                }

                continue;
            }

            if (!ProcessIdentity.IsIdentityWord(holder))
            {
                throw new ShmCorruptionException(Name, 0, $"the {what} lock of end {_end} holds 0x{holder:X16}, which is neither 0 nor a process identity");
            }

            if (liveness.TryBegin())
            {
                if (!PeerLiveness.IsLiveIdentity(_segment.Platform, holder))
                {
                    if (OwnerWordLock.TryTakeOver(word, holder, _ownerWord))
                    {
                        _logger?.LogWarning("Pipe {Name}: took over the {What} lock of end {End} from process {Pid}, which died holding it.",
                            Name, what, _end, ProcessIdentity.FromWord(holder).Pid);
                        return true;
                    }

                    continue;
                }
            }

            if (checkState)
            {
                ThrowIfStopped();
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (deadline == NoWait || Stopwatch.GetTimestamp() >= deadline)
            {
                return false;
            }

            spinner.SpinOnce(sleep1Threshold: 20);
        }
    }

    // ---------------------------------------------------------------- sharing

    /// <summary>
    /// Lets another process hold this end too (Python's semantics of passing a Connection to a child): makes the end
    /// shared if it is not yet, reserves a Holders word for the newcomer, and returns the token it attaches with
    /// (<see cref="AcquireHandover"/>). This connection stays usable. Waits up to 10 s for calls of other threads on
    /// this end to finish (the switch to shared mode needs them out).
    /// </summary>
    /// <exception cref="InvalidOperationException">The end already has <see cref="PipeDescriptor.MaxHolders"/> holders
    /// (and pending tokens); or a call on another thread did not finish in time; or called from a ReceiveMany handler.</exception>
    /// <exception cref="ObjectDisposedException">This end was disposed.</exception>
    internal string Share()
    {
        if (Volatile.Read(ref _handlerThread) == Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException($"End {_end} of pipe '{Name}' cannot be shared from inside a ReceiveMany handler on it: return from the handler first.");
        }

        long deadline = WaitSignal.DeadlineFrom(EndpointLifetime.DrainTimeout);
        if (!EnterGuardsForShare(deadline))
        {
            throw new InvalidOperationException($"A call on another thread did not leave end {_end} of pipe '{Name}' within {EndpointLifetime.DrainTimeout}; the end was not shared.");
        }

        try
        {
            if (!_shared)
            {
                MakeShared();
            }

            ulong pending = NewHandoverWord();
            int slot = ClaimHolderWord(pending);
            _logger?.LogDebug("Pipe {Name}: end {End} shared (holder word {Slot} reserved for a token).", Name, _end, slot);
            return string.Join(':', ShareTokenPrefix, _end.ToString(CultureInfo.InvariantCulture), slot.ToString(CultureInfo.InvariantCulture),
                pending.ToString("x16", CultureInfo.InvariantCulture), _unlinkOnDispose ? "1" : "0", Name);
        }
        finally
        {
            _receiveGuard.Exit();
            _sendGuard.Exit();
        }
    }

    /// <summary>Takes both guards (without the shared locks): no thread of this process is inside a call after.</summary>
    private bool EnterGuardsForShare(long deadline)
    {
        if (!_sendGuard.TryEnterBiased() && !WaitForGuard(ref _sendGuard, deadline, CancellationToken.None))
        {
            return false;
        }

        if (!_receiveGuard.TryEnterBiased() && !WaitForGuard(ref _receiveGuard, deadline, CancellationToken.None))
        {
            _sendGuard.Exit();
            return false;
        }

        if (!_lifetime.IsOpen)
        {
            _receiveGuard.Exit();
            _sendGuard.Exit();
            ThrowDisposed();
        }

        return true;
    }

    /// <summary>Exclusive -> shared, by the only holder, inside both guards (see the design above).</summary>
    private void MakeShared()
    {
        // Records written with SendDeferred straight into the ring become visible now: from here on Tail is re-read
        // from shared memory at each send. Staged ones stay in this process's buffer and go in under the lock later.
        if (_sendRing is { HasUnpublished: true } ring)
        {
            ring.Publish();
            _sendData!.Notify();
        }

        byte* owner = _ownSlot + PipeDescriptor.OwnerOffset;
        ulong seen = (ulong)MappedAtomics.ReadInt64Acquire(owner);
        if (seen != _ownerWord)
        {
            throw new ShmCorruptionException(Name, 0, $"the owner word of end {_end} is 0x{seen:X16} while this process holds the end exclusively");
        }

        int slot = ClaimHolderWord(_ownerWord);

        byte* flags = _segment.Control + PipeDescriptor.FlagsOffset;
        int bit = PipeDescriptor.SharedEndFlag(_end);
        int old = MappedAtomics.ReadInt32Acquire(flags);
        while ((old & bit) == 0)
        {
            int witnessed = MappedAtomics.CompareExchangeInt32(flags, old | bit, old);
            if (witnessed == old)
            {
                break;
            }

            old = witnessed;
        }

        seen = (ulong)MappedAtomics.CompareExchangeInt64(owner, (long)PipeDescriptor.SharedOwnerWord, (long)_ownerWord);
        if (seen != _ownerWord)
        {
            throw new ShmCorruptionException(Name, 0, $"the owner word of end {_end} changed to 0x{seen:X16} while this process held the end exclusively");
        }

        _holderSlot = slot;
        Volatile.Write(ref _shared, true);
    }

    /// <summary>
    /// Claims a Holders word of this end for <paramref name="word"/>: a free one (0), or one whose holder died.
    /// </summary>
    /// <exception cref="InvalidOperationException">Every word is held by a live process or a pending token.</exception>
    /// <exception cref="ShmCorruptionException">A word holds something else than 0, an identity or a handover word.</exception>
    private int ClaimHolderWord(ulong word)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            for (int i = 0; i < PipeDescriptor.MaxHolders; i++)
            {
                byte* holder = PipeDescriptor.Holder(_ownSlot, i);
                ulong seen = (ulong)MappedAtomics.ReadInt64Acquire(holder);
                bool reclaim = attempt == 1 && seen != 0 && HolderState(seen, i) == HolderKind.Dead;
                if ((seen == 0 || reclaim) && (ulong)MappedAtomics.CompareExchangeInt64(holder, (long)word, (long)seen) == seen)
                {
                    return i;
                }
            }
        }

        throw new InvalidOperationException(
            $"End {_end} of pipe '{Name}' is held by {PipeDescriptor.MaxHolders} processes (or tokens not yet used) already, the most a shared end has: close one first.");
    }

    private enum HolderKind
    {
        Free,
        Live,
        Pending,
        Dead,
    }

    /// <summary>What Holders word <paramref name="index"/> (value <paramref name="word"/>) stands for.</summary>
    /// <exception cref="ShmCorruptionException">Neither 0, an identity word nor a handover word.</exception>
    private HolderKind HolderState(ulong word, int index)
    {
        if (word == 0)
        {
            return HolderKind.Free;
        }

        if (PipeDescriptor.IsHandoverWord(word))
        {
            return HolderKind.Pending;
        }

        if (!ProcessIdentity.IsIdentityWord(word))
        {
            throw new ShmCorruptionException(Name, 0, $"holder word {index} of a pipe end is 0x{word:X16}, which is neither 0, a process identity nor a pending token");
        }

        return PeerLiveness.IsLiveIdentity(_segment.Platform, word) ? HolderKind.Live : HolderKind.Dead;
    }

    /// <summary>
    /// True when the shared end at <paramref name="slot"/> has a live holder or a pending token. Every word is checked
    /// (a corrupt one throws wherever it is); two scans that agree word for word are needed to say no (a holder adds a
    /// token only while it is listed itself, so a token added behind the scan shows as a change).
    /// </summary>
    /// <exception cref="ShmCorruptionException">A Holders word is neither 0, an identity word nor a handover word.</exception>
    private bool AnyHolderLeft(byte* slot)
    {
        Span<ulong> previous = stackalloc ulong[PipeDescriptor.MaxHolders];
        for (int scan = 0; ; scan++)
        {
            bool left = false;
            bool same = scan > 0;
            for (int i = 0; i < PipeDescriptor.MaxHolders; i++)
            {
                ulong word = (ulong)MappedAtomics.ReadInt64Acquire(PipeDescriptor.Holder(slot, i));
                if (word != 0 && !PipeDescriptor.IsHandoverWord(word) && !ProcessIdentity.IsIdentityWord(word))
                {
                    throw new ShmCorruptionException(Name, 0, $"holder word {i} of a pipe end is 0x{word:X16}, which is neither 0, a process identity nor a pending token");
                }

                left = left || (word != 0 && HolderState(word, i) is HolderKind.Live or HolderKind.Pending);
                same &= previous[i] == word;
                previous[i] = word;
            }

            if (left)
            {
                return true;
            }

            if (same)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Closing a holder of a shared end: clears our Holders word, and says whether we were the last (then the caller
    /// stores Closed = 1 for the peer).
    /// </summary>
    private bool LeaveHolders()
    {
        byte* holder = PipeDescriptor.Holder(_ownSlot, _holderSlot);
        ulong seen = (ulong)MappedAtomics.CompareExchangeInt64(holder, 0, (long)_ownerWord);
        if (seen != _ownerWord)
        {
            _logger?.LogWarning("Pipe {Name}: holder word {Slot} of end {End} was 0x{Seen:X16}, not this process's; left as it is.", Name, _holderSlot, _end, seen);
        }

        try
        {
            return !AnyHolderLeft(_ownSlot);
        }
        catch (ShmCorruptionException e)
        {
            _logger?.LogWarning(e, "Pipe {Name}: the holders of end {End} could not be read while closing; the end is left open for the peer.", Name, _end);
            return false;
        }
    }

    /// <summary>The peer's end is shared: is any of its holders (or a pending token) left?</summary>
    private bool PeerHoldersLeft() => AnyHolderLeft(_peerSlot);

    /// <summary>
    /// Attaches with a share token: CAS of the reserved Holders word from the token's handover word to our identity.
    /// </summary>
    private static ShmConnection AttachShared(string token, ShmPipeOptions? options)
    {
        string[] parts = token.Split(':', 6);
        if (parts.Length != 6 || parts[0] != ShareTokenPrefix || parts[4] is not ("0" or "1")
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int end) || end is not (0 or 1)
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int slot) || slot >= PipeDescriptor.MaxHolders
            || !ulong.TryParse(parts[3], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong pending) || !PipeDescriptor.IsHandoverWord(pending))
        {
            throw new FormatException($"'{token}' is not a pipe share token.");
        }

        options ??= new ShmPipeOptions();
        ShmSegment segment = ShmPipe.OpenValidated(parts[5], options, out PipeDescriptor.Geometry geometry);
        ulong me = SharedMemoryPlatform.Current.CurrentProcess.ToWord();
        bool unlink = parts[4] == "1" && options.UnlinkOnDispose; // the creator's duty, carried out by the end's last holder
        ShmConnection connection = Attach(segment, geometry, end, options, unlink, claimFrom: null, claimedWord: me);
        try
        {
            byte* holder = PipeDescriptor.Holder(connection._ownSlot, slot);
            ulong seen = (ulong)MappedAtomics.CompareExchangeInt64(holder, (long)me, (long)pending);
            if (seen != pending)
            {
                throw ClaimRefused(segment.Name, end, pending, seen);
            }

            // Read after our CAS, which follows the sharer's Flags CAS: the end is shared (see the design above).
            int flags = MappedAtomics.ReadInt32Acquire(segment.Control + PipeDescriptor.FlagsOffset);
            if ((flags & PipeDescriptor.SharedEndFlag(end)) == 0)
            {
                MappedAtomics.CompareExchangeInt64(holder, (long)pending, (long)me);
                throw new ShmCorruptionException(segment.Name, 0, $"a share token names end {end}, which is not marked shared (flags 0x{flags:X8})");
            }

            connection._holderSlot = slot;
            Volatile.Write(ref connection._shared, true);
            return connection;
        }
        catch
        {
            connection.Release(drained: true, unlink: false);
            throw;
        }
    }
}
