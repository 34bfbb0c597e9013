using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ShmIpc;

/// <summary>
/// Space for one message lent straight from the shared ring of a <see cref="ShmQueue"/> or a pipe end
/// (<see cref="ShmConnection"/>): write the message into <see cref="Span"/>, then <see cref="Commit"/> it. No staging
/// buffer and no copy: the bytes written are the bytes the consumer reads. Disposing without committing abandons
/// the space (nothing is delivered).
/// </summary>
/// <remarks>
/// <para>Use it in a <c>using</c> statement, on the thread that took it (a <c>ref struct</c> cannot leave it):</para>
/// <code>
/// using (ShmLoan loan = queue.Loan(4096))
/// {
///     int length = Encode(loan.Span);
///     loan.Commit(length);
/// }
/// </code>
/// <para>While the loan is open its space is claimed exactly as by a producer half-way through an enqueue: consumers
/// of a queue wait for it (messages enqueued after it by others are delivered after it), and it is skipped if this
/// process dies before committing. A pipe end sends nothing else while one of its loans is open (other sends on it
/// wait for their turn; the thread holding the loan cannot send on that end). A queue's consumers wait for an open
/// loan, so the thread holding it should not dequeue from that queue meanwhile. Keep loans short.</para>
/// <para>The object it came from must stay open until the loan is committed or disposed: disposing the queue or
/// the end waits for open loans, as it does for calls in progress.</para>
/// <para>A loan reads like a value but is not copied in any useful sense: every copy names the same space, and
/// whichever copy commits or disposes first ends it for all; the others then throw
/// <see cref="InvalidOperationException"/> (<see cref="Dispose"/> does nothing). <c>default(ShmLoan)</c> is no
/// loan at all.</para>
/// </remarks>
public readonly ref struct ShmLoan
{
    private readonly ShmQueue? _queue;
    private readonly ShmConnection? _connection;
    private readonly LoanToken? _token;
    private readonly long _version;
    private readonly long _position;
    private readonly Span<byte> _span;

    internal ShmLoan(ShmQueue? queue, ShmConnection? connection, long position, Span<byte> span)
    {
        _queue = queue;
        _connection = connection;
        _token = LoanToken.Rent();
        _version = _token.Version;
        _position = position;
        _span = span;
    }

    /// <summary>
    /// The lent space: exactly the <c>maxLength</c> bytes asked for, inside the shared ring. Its contents are
    /// undefined until written. Valid until <see cref="Commit"/> or <see cref="Dispose"/>; a span kept beyond that
    /// points at ring space that others reuse.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loan was already committed or disposed, or this is no loan.</exception>
    public Span<byte> Span
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (!IsOpen)
            {
                ThrowEnded();
            }

            return _span;
        }
    }

    /// <summary>True until the loan is committed or disposed (false for <c>default(ShmLoan)</c>).</summary>
    public bool IsOpen => _token is not null && _token.Version == _version;

    /// <summary>
    /// Publishes the first <paramref name="length"/> bytes of <see cref="Span"/> as one message and ends the loan:
    /// consumers waiting are woken, as by an enqueue or a send. A length shorter than the loan's is fine (the rest
    /// of the space is given back); 0 sends an empty message.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or longer than the loan; the loan stays open.</exception>
    /// <exception cref="InvalidOperationException">The loan was already committed or disposed, or this is no loan.</exception>
    public void Commit(int length)
    {
        if (!IsOpen)
        {
            ThrowEnded();
        }

        if ((uint)length > (uint)_span.Length)
        {
            ThrowLength(length);
        }

        _token!.End();
        if (_queue is not null)
        {
            _queue.CommitLoan(_position, _span.Length, length);
        }
        else
        {
            _connection!.CommitLoan(length);
        }
    }

    /// <summary>Ends the loan; if it was not committed, its space is abandoned and nothing is delivered. Idempotent.</summary>
    public void Dispose()
    {
        if (!IsOpen)
        {
            return;
        }

        _token!.End();
        if (_queue is not null)
        {
            _queue.AbandonLoan(_position);
        }
        else
        {
            _connection!.AbandonLoan();
        }
    }

    private string OwnerDescription => _queue is not null ? $"queue '{_queue.Name}'" : _connection is not null ? $"pipe '{_connection.Name}'" : "no object";

    [DoesNotReturn]
    private void ThrowEnded() =>
        throw new InvalidOperationException(_token is null
            ? "This ShmLoan is the default value: it lends nothing. Take a loan with Loan or TryLoan."
            : $"This loan of {OwnerDescription} was already committed or disposed; its space is no longer this loan's.");

    [DoesNotReturn]
    private void ThrowLength(int length) =>
        throw new ArgumentOutOfRangeException(nameof(length), length,
            $"A loan of {_span.Length} bytes from {OwnerDescription} can commit 0 to {_span.Length} bytes; the loan is still open.");
}

/// <summary>
/// The process-local state of open loans: a version that grows when a loan ends, so that every copy of an ended
/// <see cref="ShmLoan"/> knows it without touching shared memory (which may be unmapped by then). One per thread
/// is reused (a loan cannot leave its thread); a thread holding several loans at once gets more.
/// </summary>
internal sealed class LoanToken
{
    [ThreadStatic]
    private static LoanToken? t_spare;

    /// <summary>Read and written by the one thread the loan lives on.</summary>
    public long Version { get; private set; }

    public static LoanToken Rent()
    {
        LoanToken? token = t_spare;
        if (token is null)
        {
            return new LoanToken();
        }

        t_spare = null;
        return token;
    }

    /// <summary>Ends the current loan: every copy of it now reads as ended. Then the token is kept for the next.</summary>
    public void End()
    {
        Version++;
        t_spare = this;
    }
}
