using System.Runtime.ExceptionServices;

namespace ShmIpc.Pool;

/// <summary>An Imap's input: reads items until they end or the enumerator throws, and keeps that exception for later.</summary>
internal sealed class ImapInput<TArg>(IEnumerable<TArg> items) : IDisposable
{
    private readonly IEnumerator<TArg> _enumerator = items.GetEnumerator();

    /// <summary>False once the input ended or threw.</summary>
    public bool More { get; private set; } = true;

    /// <summary>What the input threw, to rethrow after the results before it.</summary>
    public ExceptionDispatchInfo? Failure { get; private set; }

    public TArg Current => _enumerator.Current;

    public bool MoveNext()
    {
        if (!More)
        {
            return false;
        }

        try
        {
            More = _enumerator.MoveNext();
        }
        catch (Exception e)
        {
            More = false;
            Failure = ExceptionDispatchInfo.Capture(e);
        }

        return More;
    }

    public void Dispose() => _enumerator.Dispose();
}
