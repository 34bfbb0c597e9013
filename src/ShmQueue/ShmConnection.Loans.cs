using System.Diagnostics.CodeAnalysis;
using ShmIpc.Diagnostics;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

// Loaned sends (ShmLoan): room after the send ring's Tail lent to the caller, published by the commit.
public sealed unsafe partial class ShmConnection
{
    /// <summary>The managed thread id holding an open loan of this end (it holds the send guard meanwhile), or 0.</summary>
    private int _loanThread;

    /// <summary>
    /// Lends <paramref name="maxLength"/> bytes of the send ring to write one message in place, waiting while the
    /// pipe is full. Write into <see cref="ShmLoan.Span"/>, then <see cref="ShmLoan.Commit"/>; disposing without
    /// committing sends nothing.
    /// </summary>
    /// <remarks>
    /// The loan holds this end's turn to send: until it is committed or disposed, other sends on this end (from any
    /// thread, or any process sharing it) wait; a send (or another loan) on this end from the thread holding the loan
    /// throws <see cref="InvalidOperationException"/> instead of waiting for itself. Messages
    /// deferred before it (<see cref="SendDeferred"/>) go first; the commit publishes them with it. This end cannot
    /// finish <see cref="Dispose"/> while a loan is open.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is negative or longer than <see cref="MaxMessageLength"/>.</exception>
    /// <exception cref="OperationCanceledException">Cancelled while the pipe was full; nothing was lent.</exception>
    /// <exception cref="ShmPeerClosedException">The other end is closed or its process died.</exception>
    /// <exception cref="ObjectDisposedException">This end was disposed.</exception>
    /// <exception cref="InvalidOperationException">This end only receives, or this thread already holds a loan of it.</exception>
    public ShmLoan Loan(int maxLength, CancellationToken cancellationToken = default)
    {
        LoanCore(maxLength, long.MaxValue, cancellationToken, out ShmLoan loan);
        return loan;
    }

    /// <summary>Lends <paramref name="maxLength"/> bytes of the send ring, waiting up to <paramref name="timeout"/> for room (see <see cref="Loan(int, CancellationToken)"/>).</summary>
    /// <exception cref="TimeoutException">The pipe stayed full for <paramref name="timeout"/>; nothing was lent.</exception>
    /// <inheritdoc cref="Loan(int, CancellationToken)" path="/exception"/>
    public ShmLoan Loan(int maxLength, TimeSpan timeout) =>
        LoanCore(maxLength, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out ShmLoan loan) ? loan : ThrowLoanTimeout(maxLength, timeout);

    /// <summary>
    /// Lends <paramref name="maxLength"/> bytes of the send ring, waiting up to <paramref name="timeout"/> for room
    /// (<see cref="TimeSpan.Zero"/>: not at all). False, with no loan, when the time ran out.
    /// </summary>
    /// <inheritdoc cref="Loan(int, CancellationToken)" path="/remarks"/>
    /// <inheritdoc cref="Loan(int, CancellationToken)" path="/exception"/>
    public bool TryLoan(int maxLength, out ShmLoan loan, TimeSpan timeout) =>
        LoanCore(maxLength, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out loan);

    /// <summary>Takes the send turn (and keeps it while the loan is open), then waits for room as SendCore does.</summary>
    private bool LoanCore(int maxLength, long deadline, CancellationToken cancellationToken, out ShmLoan loan)
    {
        SpscRing ring = _sendRing ?? ThrowCannotSend();
        if ((uint)maxLength > (uint)_maxMessageLength)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength,
                $"Pipe '{Name}' lends 0 to {_maxMessageLength} bytes (its MaxMessageLength); nothing was lent.");
        }

        loan = default;
        cancellationToken.ThrowIfCancellationRequested();
        if (!EnterSend(deadline, cancellationToken))
        {
            return false;
        }

        bool lent = false;
        try
        {
            if (IsPeerClosedCheap())
            {
                ThrowPeerClosed();
            }

            if (ring.HasStaged && !UnstageWaiting(ring, deadline, cancellationToken))
            {
                return false;
            }

            byte* payload;
            while (!ring.TryBeginLoan(maxLength, out payload))
            {
                if (ring.HasUnpublished)
                {
                    // Full: what is pending must be seen before the receiver can make room.
                    ring.Publish();
                    _sendData!.Notify();
                }

                if (!WaitForSpace(ring, maxLength, deadline, cancellationToken))
                {
                    return false;
                }
            }

            loan = new ShmLoan(null, this, 0, new Span<byte>(payload, maxLength));
            Volatile.Write(ref _loanThread, Environment.CurrentManagedThreadId);
            lent = true;
            return true;
        }
        finally
        {
            if (!lent)
            {
                ExitSend();
            }
        }
    }

    /// <summary>ShmLoan.Commit: publishes the record, wakes the receiver, counts the message; the send turn ends.</summary>
    internal void CommitLoan(int length)
    {
        try
        {
            _sendRing!.CommitLoan(length);
            _sendData!.Notify();
            CountSent(length);
        }
        finally
        {
            EndLoanTurn();
        }
    }

    /// <summary>ShmLoan.Dispose without a commit: nothing was published, so ending the send turn is all.</summary>
    internal void AbandonLoan() => EndLoanTurn();

    private void EndLoanTurn()
    {
        Volatile.Write(ref _loanThread, 0);
        ExitSend();
    }

    [DoesNotReturn]
    private void ThrowSendDuringLoan() =>
        throw new InvalidOperationException($"This thread holds a loan of end {_end} of pipe '{Name}': commit or dispose it before sending (or taking another loan) on this end; the loan keeps the end's turn to send.");

    [DoesNotReturn]
    private ShmLoan ThrowLoanTimeout(int maxLength, TimeSpan timeout) =>
        throw new TimeoutException($"End {_end} of pipe '{Name}' stayed full for {timeout}: no room for a loan of {maxLength} bytes.");
}
