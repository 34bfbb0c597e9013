using BenchmarkDotNet.Attributes;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// One 64 B TryEnqueue + TryDequeue pair on a ShmQueue in one process (no peer, so no waiting): the
/// per-message cost of the ring itself. Expectation: zero allocations per pair on both paths: the span
/// path copies into a caller buffer, the zero-copy path hands the message in place to a static (cached)
/// reader delegate with a struct state.
/// </summary>
[MemoryDiagnoser]
public class QueueBenchmarks
{
    private static readonly ShmMessageReader<int, int> s_reader = static (message, state) => message[0] + state;

    private readonly byte[] _message = new byte[64];
    private readonly byte[] _buffer = new byte[64];
    private ShmQueue? _queue;

    [GlobalSetup]
    public void Setup() => _queue = ShmQueue.Create(Foundation.NewSegmentName("micro-queue"), new ShmQueueOptions { Capacity = 1 << 20, MaxMessageLength = 64 });

    [GlobalCleanup]
    public void Teardown()
    {
        _queue?.Dispose();
        Cleanup.RunAll();
    }

    /// <summary>TryEnqueue(span) + TryDequeue(span, out written): copies in and out.</summary>
    [Benchmark(Baseline = true)]
    public int SpanPair()
    {
        _queue!.TryEnqueue(_message);
        _queue.TryDequeue(_buffer, out int written);
        return written;
    }

    /// <summary>TryEnqueue(span) + TryDequeue(reader, state, out result): the message is read where it lies.</summary>
    [Benchmark]
    public int ZeroCopyPair()
    {
        _queue!.TryEnqueue(_message);
        _queue.TryDequeue(s_reader, 1, out int result);
        return result;
    }
}
