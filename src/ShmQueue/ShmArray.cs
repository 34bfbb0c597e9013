using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// A named, fixed-length array of unmanaged values in shared memory (Python's <c>multiprocessing.Array</c>): every process
/// that opens it reads and writes the same elements. Elements are plain memory; take <see cref="Lock"/> (a recursive lock,
/// as Python's <c>get_lock()</c>) around updates other processes must see whole.
/// </summary>
/// <typeparam name="T">The element type; an opener's must have the creator's size.</typeparam>
public sealed unsafe class ShmArray<T> : IDisposable
    where T : unmanaged
{
    private readonly SharedObjectLease _lease;
    private readonly T* _data;
    private readonly int _length;

    private ShmArray(SharedObjectLease lease, int length)
    {
        _lease = lease;
        _data = (T*)lease.Segment.Data;
        _length = length;
        Lock = new ShmLock(lease, lease.Segment.Control + SharedDataDescriptor.LockBlockOffset, 0, ownsLease: false);
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>The number of elements.</summary>
    public int Length => _length;

    /// <summary>The array's lock (recursive, as Python's), stored in the array's own segment.</summary>
    public ShmLock Lock { get; }

    /// <summary>Element <paramref name="index"/>, by reference.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside [0, <see cref="Length"/>).</exception>
    public ref T this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((uint)index >= (uint)_length || _lease.IsDisposed)
            {
                ThrowBadIndex(index);
            }

            return ref _data[index];
        }
    }

    /// <summary>Creates an array of <paramref name="length"/> elements, all zero.</summary>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmArray<T> Create(string name, int length, ShmSharedObjectOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new ShmArray<T>(CreateLease(name, SegmentKind.Array, length, options), length);
    }

    /// <summary>Opens an existing array; its length is the creator's.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, elements of another size, or a corrupted array.</exception>
    public static ShmArray<T> Open(string name, ShmSharedObjectOptions? options = null)
    {
        SharedObjectLease lease = OpenLease(name, SegmentKind.Array, options, out int length);
        return new ShmArray<T>(lease, length);
    }

    /// <summary>Opens the array if it exists (whatever its length), else creates it with <paramref name="length"/> elements.</summary>
    public static ShmArray<T> OpenOrCreate(string name, int length, ShmSharedObjectOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, length, options));

    /// <summary>All elements.</summary>
    public Span<T> AsSpan()
    {
        _lease.ThrowIfDisposed();
        return new Span<T>(_data, _length);
    }

    /// <summary>Elements [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>).</summary>
    public Span<T> AsSpan(int start, int length) => AsSpan().Slice(start, length);

    /// <summary>Closes this process's mapping. The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose() => _lease.Dispose();

    /// <summary>Removes the name. Processes that have the array open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    /// <summary>Creates an Array or Value segment of <paramref name="length"/> elements of <typeparamref name="T"/> (ShmValue shares it).</summary>
    /// <paramref name="first"/> is stored in element 0 before the segment is published, so no opener sees it unset.
    internal static SharedObjectLease CreateLease(string name, SegmentKind kind, int length, ShmSharedObjectOptions? options, T first = default) =>
        SharedObjectLease.Create(name, kind, SharedDataDescriptor.ArrayControlSize, (long)length * sizeof(T), SharedDataDescriptor.ArraySemaphoreCount,
            options ?? new ShmSharedObjectOptions(), s =>
            {
                SharedDataDescriptor.InitializeArray(s.Control, sizeof(T), length, recursiveLock: true);
                if (length > 0)
                {
                    *(T*)s.Data = first;
                }
            });

    /// <summary>Opens and validates an Array or Value segment for elements of <typeparamref name="T"/>.</summary>
    internal static SharedObjectLease OpenLease(string name, SegmentKind kind, ShmSharedObjectOptions? options, out int length)
    {
        int validated = 0;
        SharedObjectLease lease = SharedObjectLease.Open(name, kind, options ?? new ShmSharedObjectOptions(),
            s => SharedDataDescriptor.ValidateArray(s.Control, s.ControlSize, s.DataSize, s.SemaphoreCount, sizeof(T), out validated));
        length = validated;
        return lease;
    }

    [DoesNotReturn]
    private void ThrowBadIndex(int index)
    {
        _lease.ThrowIfDisposed();
        throw new ArgumentOutOfRangeException(nameof(index), index, $"Index {index} is outside shared array '{Name}' of {_length} elements.");
    }
}
