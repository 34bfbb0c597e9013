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

// Space and peers: reclaiming what consumers finished, getting past a dead producer, reader or reclaimer (at the
// PeerLiveness rate for callers that never block), the wait conditions, and ShmWait's view of the queue.
public sealed unsafe partial class ShmQueue
{
    // ---- ShmWait ------------------------------------------------------------------------------------

    /// <summary>The wait holds a use of this object, as a blocking call does, so Dispose waits for it to look up.</summary>
    void IShmWaitable.BeginWait() => Enter();

    /// <summary>Ready when a dequeue would not wait (<see cref="IsReadableOrOver"/>); a dead producer's record is skipped as a waiting dequeue would.</summary>
    bool IShmWaitable.PollReady()
    {
        ThrowIfDisposed();
        if (IsReadableOrOver())
        {
            return true;
        }

        if (_ring.TryGetPending(out Blocker pending))
        {
            NotePending(pending.Position); // at a bounded rate: proves the producer dead, then skips its record
        }

        return false;
    }

    void IShmWaitable.EndWait() => Exit();

    /// <summary>After a record is consumed: pass a wake on, wake producers waiting for space, reclaim past a quarter of the ring.</summary>
    /// <param name="fenced">The consumed store was followed by a full fence already (MpmcRing.EndReadAndAdvance's CAS).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AfterRead(bool fenced = false)
    {
        // Producers wake one sleeper per message (NotifyOne). A wake can be spent on a record still being written (the
        // woken consumer sleeps again) while messages behind it are ready: whoever takes a message and sees more, with
        // consumers asleep, passes one wake on, so nothing waits for a sleeper's slice to end.
        if (_dataSignal.HasSleepers && _ring.HasReadable())
        {
            _dataSignal.NotifyOne();
        }

        if (fenced)
        {
            _spaceSignal.NotifyFenced();
        }
        else
        {
            _spaceSignal.Notify();
        }

        if (_ring.ReclaimableBytes() >= _reclaimThreshold)
        {
            Reclaim();
        }
    }

    /// <summary>Reclaims finished records; wakes sleeping producers when that freed space.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool Reclaim()
    {
        if (_ring.TryReclaim(out _) > 0)
        {
            _spaceSignal.Notify();
            return true;
        }

        return false;
    }

    // ---- Dead peers ---------------------------------------------------------------------------------

    /// <summary>How often a caller that never blocks may look for dead peers (<see cref="PeerLiveness.CheckIntervalMs"/>).</summary>
    private LivenessThrottle _repairThrottle;
    private long _pendingPosition = -1;
    private long _pendingSince;

    /// <summary>
    /// A record still being written stops this caller. A blocking caller checks its producer before each
    /// sleep; a caller that only polls gets the same check here once the record has stayed unpublished
    /// for longer than the spin budget.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void NotePending(long position)
    {
        long now = Stopwatch.GetTimestamp();
        if (Volatile.Read(ref _pendingPosition) != position)
        {
            Volatile.Write(ref _pendingSince, now);
            Volatile.Write(ref _pendingPosition, position);
            return;
        }

        if (Stopwatch.GetElapsedTime(Volatile.Read(ref _pendingSince), now) >= _wait.SpinDuration && _repairThrottle.TryBegin())
        {
            ResolvePendingRecord();
        }
    }

    /// <summary>If a record still being written blocks consumers and its producer is dead, skip it.</summary>
    private void ResolvePendingRecord()
    {
        if (!_ring.TryGetPending(out Blocker pending) || IsAlive(pending.Pid, pending.IdentityWord))
        {
            return;
        }

        if (_ring.TryAbandon(pending.Position))
        {
            _logger.LogWarning("Queue {Name}: producer pid {Pid} died while writing the record at position {Position}; that one message is lost and skipped.",
                Name, pending.Pid, pending.Position);
            ShmMetrics.RecordDeadPeer(ShmMetrics.KindQueue, Name, lost: 1);
            _dataSignal.Notify();
        }
    }

    /// <summary>Frees space held by a dead reclaimer or a dead reader, so producers can go on.</summary>
    private void RepairReclaim()
    {
        ulong owner = _ring.ReclaimLockOwner;
        if (owner != 0 && !IsAlive(owner))
        {
            if (_ring.TryBreakReclaimLock(owner))
            {
                _logger.LogWarning("Queue {Name}: took over the reclaim lock of dead process {Pid}.", Name, ProcessIdentity.FromWord(owner).Pid);
                ShmMetrics.RecordDeadPeer(ShmMetrics.KindQueue, Name, lost: 0);
            }
        }

        if (_ring.TryReclaim(out Blocker? blocked) > 0)
        {
            _spaceSignal.Notify();
        }

        if (_acknowledged)
        {
            ReleaseDeadTakers(throttled: false); // an acknowledged queue delivers a dead reader's message again
        }
        else if (blocked is { } b && ProcessIdentity.IsIdentityWord(b.IdentityWord) && !IsAlive(b.IdentityWord)
            && _ring.TryReleaseDeadReader(b.Position, b.IdentityWord))
        {
            _logger.LogWarning("Queue {Name}: consumer pid {Pid} died while reading the record at position {Position}; that one message is lost.",
                Name, ProcessIdentity.FromWord(b.IdentityWord).Pid, b.Position);
            ShmMetrics.RecordDeadPeer(ShmMetrics.KindQueue, Name, lost: 1);
            Reclaim();
        }
    }

    private bool IsAlive(ulong identityWord) => _platform.IsAlive(ProcessIdentity.FromWord(identityWord), PeerLiveness.StartTimeBits);

    /// <summary>
    /// A producer's liveness: by pid and start time when its identity word is written, by pid alone in the
    /// instant between its claim and that write (see native-notes/LAYOUT.md §6).
    /// </summary>
    private bool IsAlive(int pid, ulong identityWord) =>
        ProcessIdentity.IsIdentityWord(identityWord) && ProcessIdentity.FromWord(identityWord).Pid == pid
            ? IsAlive(identityWord)
            : _platform.IsAlive(new ProcessIdentity(pid, 0), 0);

    private struct ReadableCondition : IWaitCondition
    {
        private readonly ShmQueue _queue;

        public ReadableCondition(ShmQueue queue) => _queue = queue;

        public readonly bool IsSatisfied()
        {
            _queue.ThrowIfDisposed();
            return _queue.IsReadableOrOver();
        }

        public readonly void BeforeSleep()
        {
            _queue.ThrowIfDisposed();
            _queue.ResolvePendingRecord();
            _queue.ReleaseDeadTakers(throttled: true);
        }
    }

    private struct SpaceCondition : IWaitCondition
    {
        /// <summary>
        /// The longest a batched wait holds out for a batch before it takes any finished record: at 25 M msg/s of 64 B a
        /// consumer finishes ~25 KiB in that time; a slower one gets record-by-record reclaim, as before batching.
        /// </summary>
        public static readonly long BatchWait = Stopwatch.Frequency / 100_000; // 10 us

        private readonly ShmQueue _queue;
        private readonly int _length;

        /// <summary>Finished bytes worth a reclaim: a batch while the waiter spins (batched), any after BatchWait or once it is about to sleep.</summary>
        private long _reclaimFrom;
        private long _batchUntil;
        private int _polls;

        /// <param name="queue">The queue.</param>
        /// <param name="length">The message's length (0: any room).</param>
        /// <param name="batched">
        /// For up to <see cref="BatchWait"/>, reclaim only a batch of finished records (<see cref="TryEnqueueAfterBatch"/>),
        /// unless the machine is oversubscribed.
        /// </param>
        public SpaceCondition(ShmQueue queue, int length, bool batched = false)
        {
            _queue = queue;
            _length = length;
            _reclaimFrom = 1;
            if (batched)
            {
                long now = Stopwatch.GetTimestamp();
                if (!MachineLoad.IsOversubscribed(now))
                {
                    _reclaimFrom = queue.ReclaimBatchFor(length);
                    _batchUntil = now + BatchWait;
                }
            }
        }

        public bool IsSatisfied()
        {
            _queue.ThrowIfDisposed();
            MpmcRing ring = _queue._ring;
            if (ring.HasSpaceFor(_length) || ring.ShutdownState != QueueDescriptor.ShutdownNone)
            {
                return true;
            }

            if (_reclaimFrom > 1)
            {
                // Waiting for a batch: look at ReadPosition (the line every dequeue CASes) at every 8th poll only, and
                // give up on the batch after BatchWait.
                if ((++_polls & 7) != 0)
                {
                    return false;
                }

                if (Stopwatch.GetTimestamp() >= _batchUntil)
                {
                    _reclaimFrom = 1;
                }
            }

            return ring.ReclaimableBytes() >= _reclaimFrom && _queue.Reclaim() && ring.HasSpaceFor(_length);
        }

        public void BeforeSleep()
        {
            // About to sleep: any finished record will do (a consumer that stopped after one message must still let us in),
            // and the re-check after registering (WaitSignal.SleepOnce) must not wait for more than the notify promises.
            _reclaimFrom = 1;
            _queue.ThrowIfDisposed();
            _queue.RepairReclaim();
        }
    }
}
