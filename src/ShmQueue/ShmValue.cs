using ShmIpc.Layout;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// One named unmanaged value in shared memory (Python's <c>multiprocessing.Value</c>). The value is plain memory: take
/// <see cref="Lock"/> (recursive, as Python's <c>get_lock()</c>) around read-modify-write updates; for a counter use <see cref="ShmCounter"/>.
/// </summary>
/// <typeparam name="T">The value's type; an opener's must have the creator's size.</typeparam>
public sealed unsafe class ShmValue<T> : IDisposable
    where T : unmanaged
{
    private readonly SharedObjectLease _lease;
    private readonly T* _value;

    private ShmValue(SharedObjectLease lease)
    {
        _lease = lease;
        _value = (T*)lease.Segment.Data;
        Lock = new ShmLock(lease, lease.Segment.Control + SharedDataDescriptor.LockBlockOffset, 0, ownsLease: false);
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>The value, by reference.</summary>
    public ref T Value
    {
        get
        {
            _lease.ThrowIfDisposed();
            return ref *_value;
        }
    }

    /// <summary>The value's lock (recursive, as Python's), stored in the value's own segment.</summary>
    public ShmLock Lock { get; }

    /// <summary>Creates the value, set to <paramref name="initialValue"/>.</summary>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmValue<T> Create(string name, T initialValue = default, ShmSharedObjectOptions? options = null)
    {
        return new ShmValue<T>(ShmArray<T>.CreateLease(name, SegmentKind.Value, 1, options, initialValue));
    }

    /// <summary>Opens an existing value.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, a value of another size, or a corrupted one.</exception>
    public static ShmValue<T> Open(string name, ShmSharedObjectOptions? options = null)
    {
        SharedObjectLease lease = ShmArray<T>.OpenLease(name, SegmentKind.Value, options, out int length);
        if (length != 1)
        {
            lease.Dispose();
            throw new ShmInvalidSegmentException(name, ShmSegmentError.Corrupted, $"a value holds one element, this one {length}");
        }

        return new ShmValue<T>(lease);
    }

    /// <summary>Opens the value if it exists, else creates it set to <paramref name="initialValue"/>.</summary>
    public static ShmValue<T> OpenOrCreate(string name, T initialValue = default, ShmSharedObjectOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, initialValue, options));

    /// <summary>Closes this process's mapping. The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose() => _lease.Dispose();

    /// <summary>Removes the name. Processes that have the value open keep using it.</summary>
    public void Unlink() => _lease.Unlink();
}
