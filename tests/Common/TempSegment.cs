namespace ShmIpc.Tests.Common;

/// <summary>
/// One test's name in /dev/shm, unique to the test, and the promise that nothing under it outlives the test, even
/// when the test fails: <see cref="Dispose"/> releases what the test made (<see cref="TempSegment{T}"/>), then
/// removes every entry still under the name (the segment file and its semaphores, <c>sem.shmipc.NAME.sN</c>).
/// </summary>
/// <remarks>
/// The removal is a safety net, not a check: a test that asserts the code under test cleans up looks at
/// <see cref="Files"/> after <see cref="TempSegment{T}.Release"/>, before the net is drawn.
/// </remarks>
internal class TempSegment : IDisposable
{
    private bool _disposed;

    protected TempSegment(string what) => Name = TestNames.Unique(what);

    /// <summary>The unique name (without the <c>shmipc.</c> prefix the files carry).</summary>
    public string Name { get; }

    /// <summary>The path of the segment file.</summary>
    public string Path => "/dev/shm/shmipc." + Name;

    /// <summary>The /dev/shm entries under the name right now.</summary>
    public string[] Files => TestNames.ShmFilesOf(Name);

    /// <summary>A name only, for a test that writes the file itself (a foreign or truncated one, say).</summary>
    public static TempSegment Reserve(string what) => new(what);

    /// <summary>
    /// Creates an object under a unique name: <paramref name="create"/> gets the name. Its Dispose releases it
    /// (the creator's dispose unlinks); <paramref name="unlink"/>, when given, runs first (a raw segment is unlinked
    /// by hand).
    /// </summary>
    public static TempSegment<T> Create<T>(string what, Func<string, T> create, Action<T>? unlink = null)
        where T : IDisposable => new(what, create, unlink);

    /// <summary>Releases what the test made, then removes whatever is left under the name. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            ReleaseCore();
        }
        finally
        {
            RemoveFiles();
        }
    }

    protected virtual void ReleaseCore()
    {
    }

    protected void RemoveFiles()
    {
        foreach (string file in Files)
        {
            File.Delete(file);
        }
    }
}

/// <summary>A <see cref="TempSegment"/> holding the object a test created under the name.</summary>
internal sealed class TempSegment<T> : TempSegment
    where T : IDisposable
{
    private readonly Action<T>? _unlink;
    private bool _released;

    internal TempSegment(string what, Func<string, T> create, Action<T>? unlink)
        : base(what)
    {
        try
        {
            Object = create(Name);
        }
        catch
        {
            RemoveFiles(); // a creation that failed half way leaves nothing either
            throw;
        }

        _unlink = unlink;
    }

    /// <summary>What the test created (a segment, a queue, a pipe end, a lock ...).</summary>
    public T Object { get; }

    /// <summary>
    /// Unlinks (when the fixture was given how) and disposes <see cref="Object"/>, as the end of the test would; the
    /// test can then check <see cref="TempSegment.Files"/>. Idempotent.
    /// </summary>
    public void Release()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        try
        {
            _unlink?.Invoke(Object);
        }
        finally
        {
            Object.Dispose();
        }
    }

    protected override void ReleaseCore() => Release();
}
