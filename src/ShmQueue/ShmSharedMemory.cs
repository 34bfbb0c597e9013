using ShmIpc.Layout;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// A named block of shared memory (Python's <c>multiprocessing.shared_memory.SharedMemory</c>): bytes that every process
/// that opens it sees, never copied. What the bytes mean and how their access is ordered is up to the users: use a
/// <see cref="ShmLock"/> or <see cref="ShmEvent"/> to hand them over.
/// </summary>
/// <remarks>Spans and memories handed out stay valid until this handle is disposed; using them after that is a bug
/// (a span cannot be checked; a <see cref="Memory{T}"/> throws <see cref="ObjectDisposedException"/>).</remarks>
public sealed unsafe class ShmSharedMemory : IDisposable
{
    private readonly SharedObjectLease _lease;
    private readonly byte* _data;

    private ShmSharedMemory(SharedObjectLease lease)
    {
        _lease = lease;
        _data = lease.Segment.Data;
        Size = lease.Segment.DataSize;
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>The block's size in bytes, as its creator asked.</summary>
    public long Size { get; }

    /// <summary>The whole block, when it is smaller than 2 GiB (else use <see cref="GetSpan"/>).</summary>
    /// <exception cref="InvalidOperationException">The block is 2 GiB or larger.</exception>
    public Span<byte> Span
    {
        get
        {
            if (Size > int.MaxValue)
            {
                throw new InvalidOperationException($"Shared memory '{Name}' has {Size} bytes, more than a span can hold; use GetSpan(offset, length).");
            }

            return GetSpan(0, (int)Size);
        }
    }

    /// <summary>Creates a block of <paramref name="size"/> bytes, all zero.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not between 1 byte and 1 TiB.</exception>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmSharedMemory Create(string name, long size, ShmSharedObjectOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, SharedDataDescriptor.MaxSize);
        return new ShmSharedMemory(SharedObjectLease.Create(name, SegmentKind.SharedMemory, SharedDataDescriptor.MemoryControlSize, size, 0,
            options ?? new ShmSharedObjectOptions(), s => SharedDataDescriptor.InitializeMemory(s.Control, size)));
    }

    /// <summary>Opens an existing block; its size is the creator's.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, or a corrupted block.</exception>
    public static ShmSharedMemory Open(string name, ShmSharedObjectOptions? options = null) =>
        new(SharedObjectLease.Open(name, SegmentKind.SharedMemory, options ?? new ShmSharedObjectOptions(),
            s => SharedDataDescriptor.ValidateMemory(s.Control, s.ControlSize, s.DataSize, s.SemaphoreCount)));

    /// <summary>Opens the block if it exists (whatever its size), else creates it with <paramref name="size"/> bytes.</summary>
    public static ShmSharedMemory OpenOrCreate(string name, long size, ShmSharedObjectOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, size, options));

    /// <summary>The bytes [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) of the block.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the block.</exception>
    public Span<byte> GetSpan(long offset, int length)
    {
        CheckRange(offset, length);
        return new Span<byte>(_data + offset, length);
    }

    /// <summary>
    /// The bytes [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) as a <see cref="Memory{T}"/>
    /// (for async APIs and streams), backed by a <see cref="System.Buffers.MemoryManager{T}"/> over the mapping: nothing is copied.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the block.</exception>
    public Memory<byte> GetMemory(long offset, int length)
    {
        CheckRange(offset, length);
        return new MappedMemoryManager(_lease, _data + offset, length).Memory;
    }

    /// <summary>Closes this process's mapping. The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose() => _lease.Dispose();

    /// <summary>Removes the name. Processes that have the block open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    private void CheckRange(long offset, int length)
    {
        _lease.ThrowIfDisposed();
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"The range {offset}+{length} is not inside shared memory '{Name}' of {Size} bytes.");
        }
    }
}
