using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ShmIpc.Endpoints;
using ShmIpc.Signaling;

namespace ShmIpc;

// The guards a call takes to send, receive or do anything else on this end: the send and receive guards
// (BiasedGuard, one thread of this process at a time per direction), the shared end's ring locks after them, and the
// lifetime's counter for other calls. Their protocol against Stop is the Design block of ShmConnection.Lifetime.cs.
public sealed unsafe partial class ShmConnection
{
    /// <summary>
    /// Takes the send guard (waiting while another thread of this process sends) and, when this end is shared, the
    /// ring's SendLock. False when <paramref name="deadline"/> passed first (nothing taken).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool EnterSend(long deadline, CancellationToken cancellationToken)
    {
        if (!_sendGuard.TryEnterBiased() && !WaitForGuard(ref _sendGuard, deadline, cancellationToken))
        {
            return false;
        }

        if (!_lifetime.IsOpen)
        {
            _sendGuard.Exit();
            ThrowDisposed();
        }

        // Plain read: _shared is set by a thread that held both guards (Share); this thread either took the guard's
        // lock after it (a CAS) or is the biased thread, whose bias Share's thread revoked first (see BiasedGuard).
        return !_shared || EnterSendShared(deadline, cancellationToken);
    }

    /// <summary>EnterSend of a shared end: SendLock too; the guard is let go again when that fails or throws.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool EnterSendShared(long deadline, CancellationToken cancellationToken)
    {
        bool locked = false;
        try
        {
            locked = LockSendRing(checkState: true, deadline, cancellationToken);
            return locked;
        }
        finally
        {
            if (!locked)
            {
                _sendGuard.Exit();
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ExitSend()
    {
        if (_sendLockHeld)
        {
            UnlockSendRing();
        }

        _sendGuard.Exit(); // release: our mapping accesses finish before a stopper sees the guard free
    }

    /// <summary>
    /// Takes the receive guard (waiting while another thread of this process receives) and, when this end is shared
    /// and <paramref name="lockRing"/> (a call that consumes), the ring's ReceiveLock. False when the deadline passed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool EnterReceive(long deadline, CancellationToken cancellationToken, bool lockRing = true)
    {
        if (!_receiveGuard.TryEnterBiased() && !WaitForGuard(ref _receiveGuard, deadline, cancellationToken))
        {
            return false;
        }

        if (!_lifetime.IsOpen)
        {
            _receiveGuard.Exit();
            ThrowDisposed();
        }

        return !lockRing || !_shared || EnterReceiveShared(deadline, cancellationToken);
    }

    /// <summary>EnterReceive of a shared end: ReceiveLock too; the guard is let go again when that fails or throws.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool EnterReceiveShared(long deadline, CancellationToken cancellationToken)
    {
        bool locked = false;
        try
        {
            locked = LockReceiveRing(checkState: true, deadline, cancellationToken);
            return locked;
        }
        finally
        {
            if (!locked)
            {
                _receiveGuard.Exit();
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ExitReceive()
    {
        if (_receiveLockHeld)
        {
            UnlockReceiveRing();
        }

        _receiveGuard.Exit();
    }

    /// <summary>
    /// Another thread of this process holds <paramref name="guard"/>: wait for it (spinning, then yielding and
    /// sleeping a millisecond at a time) until it is ours, this end stops, or the deadline passes (false). A
    /// ReceiveMany handler receiving on its own end, or a thread sending while it holds a loan of this end, would wait
    /// for itself: refused.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WaitForGuard(ref BiasedGuard guard, long deadline, CancellationToken cancellationToken)
    {
        if (Unsafe.AreSame(ref guard, ref _receiveGuard) && Volatile.Read(ref _handlerThread) == Environment.CurrentManagedThreadId)
        {
            ThrowConcurrent("receive (or poll)");
        }

        if (Unsafe.AreSame(ref guard, ref _sendGuard) && Volatile.Read(ref _loanThread) == Environment.CurrentManagedThreadId)
        {
            ThrowSendDuringLoan(); // the loan this thread holds keeps the send turn: it would wait for itself
        }

        var wait = new GuardWait(this, deadline, cancellationToken);
        return guard.EnterSlow(ref wait);
    }

    /// <summary>A wait for a guard: spinning, then yielding and sleeping 1 ms at a time, until the deadline; throws when the end stops or the call is cancelled.</summary>
    private struct GuardWait(ShmConnection connection, long deadline, CancellationToken cancellationToken) : IGuardWait
    {
        private SpinWait _spinner;

        public bool KeepWaiting()
        {
            connection.ThrowIfStopped();
            cancellationToken.ThrowIfCancellationRequested();
            if (deadline == NoWait || Stopwatch.GetTimestamp() >= deadline)
            {
                return false;
            }

            _spinner.SpinOnce(sleep1Threshold: 20);
            return true;
        }
    }

    private void EnterOther()
    {
        if (!_lifetime.TryEnter())
        {
            ThrowDisposed();
        }
    }

    private void ExitOther() => _lifetime.Exit();

    [DoesNotReturn]
    private void ThrowConcurrent(string what) =>
        throw new InvalidOperationException($"Another call is already inside a {what} on this end of pipe '{Name}' (a ReceiveMany handler receiving on its own end, or WaitAny on an end another thread receives on).");
}
