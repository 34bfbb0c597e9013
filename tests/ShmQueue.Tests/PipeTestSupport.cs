using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using ShmIpc.Layout;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>The options pipe tests use, with a short sleep slice so a dead peer is noticed quickly.</summary>
internal static class TestPipes
{
    internal static ShmPipeOptions Options(int capacity = 4096, int? maxMessageLength = null, bool duplex = true) => new()
    {
        Capacity = capacity,
        MaxMessageLength = maxMessageLength,
        Duplex = duplex,
        WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(50) },
    };
}

/// <summary>
/// A pipe created under a unique name (end <see cref="A"/>); disposing it closes that end and checks that the pipe's
/// names left /dev/shm (they are removed either way, so a failing test leaks nothing).
/// </summary>
internal sealed class TempPipe : IDisposable
{
    private readonly TempSegment<ShmConnection> _pipe;

    public TempPipe(string what, ShmPipeOptions? options = null) =>
        _pipe = TempSegment.Create(what, name => ShmPipe.Create(name, options ?? TestPipes.Options()));

    public string Name => _pipe.Name;

    public ShmConnection A => _pipe.Object;

    public void Dispose()
    {
        _pipe.Release();
        string[] left = _pipe.Files;
        _pipe.Dispose();
        Assert.AreEqual(0, left.Length, "the pipe's names are removed from /dev/shm: " + string.Join(", ", left));
    }
}

/// <summary>A <see cref="TempPipe"/> and its connected second end <see cref="B"/>, made shared when asked; disposed together.</summary>
internal sealed class PipePair : IDisposable
{
    private readonly TempPipe _pipe;

    public PipePair(string what, ShmPipeOptions? options = null, bool share = false)
    {
        options ??= TestPipes.Options();
        _pipe = new TempPipe(what, options);
        try
        {
            B = ShmPipe.Connect(Name, options);
            if (share)
            {
                ShmConnection.AcquireHandover(B.Share(), options).Dispose();
            }
        }
        catch
        {
            _pipe.Dispose();
            throw;
        }
    }

    public string Name => _pipe.Name;

    public ShmConnection A => _pipe.A;

    public ShmConnection B { get; }

    public void Dispose()
    {
        B.Dispose();
        _pipe.Dispose();
    }
}

/// <summary>
/// A second, independent mapping of a pipe's file, addressed only through the layout constants: what a
/// C peer (or a corrupting one) would see. Used to poke bytes and to watch sleeper counts.
/// </summary>
internal sealed unsafe class PipeFileView : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;

    public PipeFileView(string name)
    {
        var stream = new FileStream("/dev/shm/shmipc." + name, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        _file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + _view.PointerOffset;
    }

    public byte* Control => _base + SegmentHeaderDescriptor.HeaderSize;

    public int Capacity => (int)*(long*)(Control + PipeDescriptor.CapacityOffset);

    public byte* RingControl(int ring) => Control + PipeDescriptor.RingControlOffset(ring);

    public byte* RingData(int ring) => Control + PipeDescriptor.ControlSize + PipeDescriptor.RingDataOffset(ring, Capacity);

    public long Tail(int ring) => MappedAtomics.ReadInt64Acquire(RingControl(ring) + SpscRingDescriptor.TailOffset);

    public long Head(int ring) => MappedAtomics.ReadInt64Acquire(RingControl(ring) + SpscRingDescriptor.HeadOffset);

    public int DataSleepers(int ring) => MappedAtomics.ReadInt32Acquire(RingControl(ring) + SpscRingDescriptor.DataSleepersOffset);

    public int SpaceSleepers(int ring) => MappedAtomics.ReadInt32Acquire(RingControl(ring) + SpscRingDescriptor.SpaceSleepersOffset);

    public ulong Owner(int end) => (ulong)MappedAtomics.ReadInt64Acquire(Control + PipeDescriptor.EndSlotOffset(end) + PipeDescriptor.OwnerOffset);

    public long Closed(int end) => MappedAtomics.ReadInt64Acquire(Control + PipeDescriptor.EndSlotOffset(end) + PipeDescriptor.ClosedOffset);

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}

internal static class Until
{
    /// <summary>Waits (spinning, then yielding) until <paramref name="condition"/> holds; fails the test at the deadline.</summary>
    public static void True(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        var spinner = new SpinWait();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s waiting until {what}.");
            }

            spinner.SpinOnce(sleep1Threshold: 30);
        }
    }
}

/// <summary>A call run on a thread of its own, so a test can watch it block; how it ended, and when, is kept.</summary>
internal sealed class BlockedCall
{
    private readonly Thread _thread;

    private BlockedCall(Action call)
    {
        _thread = new Thread(() =>
        {
            try
            {
                call();
            }
            catch (Exception e)
            {
                Exception = e;
            }
            finally
            {
                EndedAt = Stopwatch.GetTimestamp();
            }
        });
    }

    /// <summary>What the call threw (null when it returned).</summary>
    public Exception? Exception { get; private set; }

    /// <summary>When it ended, as a <see cref="Stopwatch"/> timestamp.</summary>
    public long EndedAt { get; private set; }

    public static BlockedCall Start(Action call)
    {
        var blocked = new BlockedCall(call);
        blocked._thread.Start();
        return blocked;
    }

    /// <summary>Waits for the call to end; false at the deadline.</summary>
    public bool Join(TimeSpan timeout) => _thread.Join(timeout);
}
