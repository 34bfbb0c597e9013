using System.Buffers;

namespace ShmIpc.Sync;

/// <summary>
/// A <see cref="Memory{T}"/> over a range of a mapping, for <see cref="ShmSharedMemory.GetMemory"/>. The mapping is
/// pinned by nature (it never moves), so Pin hands out the address and Unpin has nothing to do. Using the memory after
/// its object was disposed throws <see cref="ObjectDisposedException"/> at <see cref="GetSpan"/>.
/// </summary>
internal sealed unsafe class MappedMemoryManager(SharedObjectLease lease, byte* start, int length) : MemoryManager<byte>
{
    public override Span<byte> GetSpan()
    {
        lease.ThrowIfDisposed();
        return new Span<byte>(start, length);
    }

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        lease.ThrowIfDisposed();
        if ((uint)elementIndex > (uint)length)
        {
            throw new ArgumentOutOfRangeException(nameof(elementIndex));
        }

        return new MemoryHandle(start + elementIndex);
    }

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
