using ShmIpc.Layout;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// A named 64-bit counter that processes update atomically (every operation is one hardware atomic on shared memory,
/// a full fence; no lock, no syscall). A process killed mid-call leaves the counter either updated or not, never torn.
/// </summary>
public sealed unsafe class ShmCounter : IDisposable
{
    private readonly SharedObjectLease _lease;
    private readonly byte* _value;

    private ShmCounter(SharedObjectLease lease)
    {
        _lease = lease;
        _value = lease.Segment.Control + SharedDataDescriptor.CounterValueOffset;
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>The current value (an acquire load).</summary>
    public long Value => MappedAtomics.ReadInt64Acquire(Checked());

    /// <summary>Creates a counter set to <paramref name="initialValue"/>.</summary>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmCounter Create(string name, long initialValue = 0, ShmSharedObjectOptions? options = null) =>
        new(SharedObjectLease.Create(name, SegmentKind.Counter, SharedDataDescriptor.CounterControlSize, 0, 0, options ?? new ShmSharedObjectOptions(),
            s => *(long*)(s.Control + SharedDataDescriptor.CounterValueOffset) = initialValue));

    /// <summary>Opens an existing counter.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object.</exception>
    public static ShmCounter Open(string name, ShmSharedObjectOptions? options = null) =>
        new(SharedObjectLease.Open(name, SegmentKind.Counter, options ?? new ShmSharedObjectOptions(),
            s => SharedDataDescriptor.ValidateCounter(s.ControlSize, s.DataSize, s.SemaphoreCount)));

    /// <summary>Opens the counter if it exists, else creates it set to <paramref name="initialValue"/>.</summary>
    public static ShmCounter OpenOrCreate(string name, long initialValue = 0, ShmSharedObjectOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, initialValue, options));

    /// <summary>Adds one; returns the new value.</summary>
    public long Increment() => MappedAtomics.AddInt64(Checked(), 1);

    /// <summary>Adds <paramref name="delta"/> (wrapping on overflow); returns the new value.</summary>
    public long Add(long delta) => MappedAtomics.AddInt64(Checked(), delta);

    /// <summary>Sets the value to <paramref name="value"/> if it equals <paramref name="comparand"/>; returns the value it had.</summary>
    public long CompareExchange(long value, long comparand) => MappedAtomics.CompareExchangeInt64(Checked(), value, comparand);

    /// <summary>Sets the value; returns the value it had.</summary>
    public long Exchange(long value) => MappedAtomics.ExchangeInt64(Checked(), value);

    /// <summary>Closes this process's mapping. The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose() => _lease.Dispose();

    /// <summary>Removes the name. Processes that have the counter open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    private byte* Checked() => _lease.Guard(_value);
}
