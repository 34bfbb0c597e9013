using BenchmarkDotNet.Attributes;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// One 64 B Send + receive pair across the two ends of a ShmPipe held by one process (no waiting: the
/// message is always there). Expectation: zero allocations per pair with ReceiveInto; exactly one (the
/// returned 64 B array, 88 B) with Receive. SharedSendReceiveInto: the same on a pipe whose sending end is shared
/// (LAYOUT §5.7: a CAS of the send lock and a reload of Tail per send), zero allocations too.
/// </summary>
[MemoryDiagnoser]
public class PipeBenchmarks
{
    private readonly byte[] _message = new byte[64];
    private readonly byte[] _buffer = new byte[64];
    private ShmConnection? _first;
    private ShmConnection? _second;
    private ShmConnection? _sharedFirst;
    private ShmConnection? _sharedSecond;

    [GlobalSetup]
    public void Setup()
    {
        string name = Foundation.NewSegmentName("micro-pipe");
        _first = ShmPipe.Create(name);
        _second = ShmPipe.Connect(name);

        string sharedName = Foundation.NewSegmentName("micro-pipe-shared");
        _sharedSecond = ShmPipe.Create(sharedName);
        _sharedFirst = ShmPipe.Connect(sharedName);
        ShmConnection.AcquireHandover(_sharedFirst.Share()).Dispose(); // shared now, one holder left
    }

    [GlobalCleanup]
    public void Teardown()
    {
        _second?.Dispose();
        _first?.Dispose();
        _sharedFirst?.Dispose();
        _sharedSecond?.Dispose();
        Cleanup.RunAll();
    }

    /// <summary>Send + ReceiveInto(buffer).</summary>
    [Benchmark(Baseline = true)]
    public int SendReceiveInto()
    {
        _first!.Send(_message);
        return _second!.ReceiveInto(_buffer);
    }

    /// <summary>Send + Receive(): allocates the returned array.</summary>
    [Benchmark]
    public int SendReceiveArray()
    {
        _first!.Send(_message);
        return _second!.Receive().Length;
    }

    /// <summary>Send on a shared end + ReceiveInto(buffer).</summary>
    [Benchmark]
    public int SharedSendReceiveInto()
    {
        _sharedFirst!.Send(_message);
        return _sharedSecond!.ReceiveInto(_buffer);
    }
}
