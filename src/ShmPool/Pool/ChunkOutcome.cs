namespace ShmIpc.Pool;

/// <summary>
/// What a chunk produced: a value or an exception per item. The values live in a slice of an array, the chunk's
/// own or the caller's result array (a Map's chunks write straight into it: no array per chunk, no copy after).
/// </summary>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class ChunkOutcome<TResult>
{
    private readonly TResult[] _array;
    private readonly int _offset;
    private Exception?[]? _errors;

    public ChunkOutcome(int count)
        : this(new TResult[count], 0, count)
    {
    }

    /// <summary>An outcome whose values are <paramref name="array"/>[<paramref name="offset"/>..+<paramref name="count"/>].</summary>
    public ChunkOutcome(TResult[] array, int offset, int count)
    {
        _array = array;
        _offset = offset;
        Count = count;
    }

    public int Count { get; }

    public Span<TResult> Values => _array.AsSpan(_offset, Count);

    public TResult ValueAt(int index) => Values[index];

    /// <summary>Its values are already in <paramref name="array"/> (the Map's result array it was made for).</summary>
    public bool IsIn(TResult[] array) => ReferenceEquals(_array, array);

    /// <summary>The first item's exception, if any failed.</summary>
    public Exception? FirstError => _errors is null ? null : Array.Find(_errors, static e => e is not null);

    /// <summary>Item <paramref name="index"/>'s exception, or null when it has a value.</summary>
    public Exception? ErrorAt(int index) => _errors?[index];

    /// <summary>Item <paramref name="index"/> failed (the array of errors exists only once one did).</summary>
    public void SetError(int index, Exception error) => (_errors ??= new Exception?[Count])[index] = error;

    /// <summary>Forgets the values and errors, for reuse.</summary>
    public void Clear()
    {
        Values.Clear();
        _errors = null;
    }
}
