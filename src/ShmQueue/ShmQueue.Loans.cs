using System.Diagnostics.CodeAnalysis;
using ShmIpc.Diagnostics;
using ShmIpc.Layout;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

// Loaned writes (ShmLoan): the producer's claim held open while the caller writes the payload in place.
public sealed unsafe partial class ShmQueue
{
    /// <summary>
    /// Lends <paramref name="maxLength"/> bytes of the ring to write one message in place, waiting while the queue is
    /// full. Write into <see cref="ShmLoan.Span"/>, then <see cref="ShmLoan.Commit"/>; disposing without committing
    /// abandons it.
    /// </summary>
    /// <remarks>
    /// The loan holds its place in the queue from now on: consumers wait for it (they skip it if this process dies
    /// first), and the space stays claimed until it is committed or disposed. Messages enqueued meanwhile by others
    /// are delivered after it. This queue cannot finish <see cref="Dispose"/> while a loan is open.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is negative or longer than <see cref="MaxMessageLength"/>.</exception>
    /// <exception cref="OperationCanceledException">Cancelled while the queue was full; nothing was claimed.</exception>
    /// <exception cref="ShmQueueShutDownException">The queue is shut down; nothing was claimed.</exception>
    /// <exception cref="ObjectDisposedException">This queue object was disposed.</exception>
    public ShmLoan Loan(int maxLength, CancellationToken cancellationToken = default)
    {
        LoanWaiting(maxLength, long.MaxValue, cancellationToken, out ShmLoan loan);
        return loan;
    }

    /// <summary>Lends <paramref name="maxLength"/> bytes of the ring, waiting up to <paramref name="timeout"/> for space (see <see cref="Loan(int, CancellationToken)"/>).</summary>
    /// <exception cref="TimeoutException">The queue stayed full for <paramref name="timeout"/>; nothing was claimed.</exception>
    /// <inheritdoc cref="Loan(int, CancellationToken)" path="/exception"/>
    public ShmLoan Loan(int maxLength, TimeSpan timeout)
    {
        if (!LoanWaiting(maxLength, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out ShmLoan loan))
        {
            throw new TimeoutException($"Queue '{Name}' stayed full for {timeout}: no room for a loan of {maxLength} bytes.");
        }

        return loan;
    }

    /// <summary>
    /// Lends <paramref name="maxLength"/> bytes of the ring, waiting up to <paramref name="timeout"/> for space
    /// (<see cref="TimeSpan.Zero"/>: not at all). False, with no loan, when the time ran out.
    /// </summary>
    /// <inheritdoc cref="Loan(int, CancellationToken)" path="/remarks"/>
    /// <inheritdoc cref="Loan(int, CancellationToken)" path="/exception"/>
    public bool TryLoan(int maxLength, out ShmLoan loan, TimeSpan timeout) =>
        LoanWaiting(maxLength, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out loan);

    /// <summary>Claims the record and keeps this call entered (the mapping stays) until the loan ends.</summary>
    private bool LoanWaiting(int maxLength, long deadline, CancellationToken cancellationToken, out ShmLoan loan)
    {
        if ((uint)maxLength > (uint)_ring.MaxMessageLength)
        {
            ThrowLoanLength(maxLength);
        }

        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        bool lent = false;
        try
        {
            long position;
            while (!TryBeginLoanCore(maxLength, out position))
            {
                var condition = new SpaceCondition(this, maxLength);
                if (!_spaceSignal.Wait(ref condition, _wait, deadline, cancellationToken) && !TryBeginLoanCore(maxLength, out position))
                {
                    loan = default;
                    return false;
                }
            }

            loan = new ShmLoan(this, null, position, new Span<byte>(_ring.LoanPayload(position), maxLength));
            lent = true;
            return true;
        }
        finally
        {
            if (!lent)
            {
                Exit();
            }
        }
    }

    /// <summary>The loan's counterpart of TryEnqueueCore: claimed (true), full (false), or shut down (throws).</summary>
    private bool TryBeginLoanCore(int maxLength, out long position)
    {
        WriteStatus status = _ring.TryBeginLoan(maxLength, out position);
        if (status == WriteStatus.Full && ReclaimOrRepair())
        {
            status = _ring.TryBeginLoan(maxLength, out position);
        }

        if (status == WriteStatus.Full)
        {
            return false;
        }

        if (status != WriteStatus.Written)
        {
            ThrowEnqueueShutDown(status);
        }

        return true;
    }

    /// <summary>
    /// The ring looked full (as in TryEnqueueAfterReclaim): reclaim what consumers have finished, or, at a bounded
    /// rate, repair after dead readers or reclaimers. True when a retry may now succeed.
    /// </summary>
    private bool ReclaimOrRepair()
    {
        if (Reclaim())
        {
            return true;
        }

        if (!_repairThrottle.TryBegin())
        {
            return false;
        }

        RepairReclaim();
        return true;
    }

    /// <summary>ShmLoan.Commit: publishes the record, wakes consumers, counts the message; the loan's call ends.</summary>
    internal void CommitLoan(long position, int maxLength, int length)
    {
        try
        {
            _ring.CommitLoan(position, maxLength, length);
            _dataSignal.Notify();
            ShmMetrics.RecordSent(ShmMetrics.KindQueue, _segment.Name, length);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>ShmLoan.Dispose without a commit: the record is abandoned (consumers waiting for it are woken to skip it).</summary>
    internal void AbandonLoan(long position)
    {
        try
        {
            _ring.EndLoan(position, QueueDescriptor.StateAbandoned);
            _dataSignal.Notify();
        }
        finally
        {
            Exit();
        }
    }

    [DoesNotReturn]
    private void ThrowLoanLength(int maxLength) =>
        throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength,
            $"Queue '{Name}' lends 0 to {_ring.MaxMessageLength} bytes (its MaxMessageLength); nothing was claimed.");
}
