using BenchmarkDotNet.Attributes;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// In-process costs of the foundation. Expectation: zero allocations per operation (the notifier's hot
/// path is a fence and one shared read; a post/trywait pair is two syscalls-free futex fast paths).
/// </summary>
[MemoryDiagnoser]
public unsafe class FoundationBenchmarks
{
    private ShmSegment? _segment;
    private NamedSemaphore? _semaphore;
    private WaitSignal? _signal;

    [GlobalSetup]
    public void Setup()
    {
        _segment = Foundation.CreateRaw(Foundation.NewSegmentName("micro"), 1);
        _semaphore = _segment.OpenSemaphore(0);
        _signal = new WaitSignal((int*)_segment.Control, _semaphore);
    }

    [GlobalCleanup]
    public void Teardown()
    {
        _semaphore?.Dispose();
        _segment?.Unlink();
        _segment?.Dispose();
        Cleanup.RunAll();
    }

    /// <summary>WaitSignal.Notify with nobody asleep: the cost every publish pays.</summary>
    [Benchmark(Baseline = true)]
    public void NotifyNoSleepers() => _signal!.Notify();

    /// <summary>sem_post then sem_trywait on a named semaphore: the cost of one wake, uncontended.</summary>
    [Benchmark]
    public bool SemaphorePostTryWait()
    {
        _semaphore!.Post();
        return _semaphore.TryWait();
    }
}
