namespace ShmIpc;

/// <summary>
/// How a blocking call waits: first it spins for <see cref="SpinDuration"/> re-reading shared memory
/// (no syscall, lowest latency), then it sleeps on a named semaphore in slices of at most
/// <see cref="SleepSlice"/>, re-checking the condition and the health of its peers after each slice.
/// A waiter therefore never waits on a dead peer for longer than one slice.
/// </summary>
public sealed record class ShmWaitStrategy
{
    /// <summary>50 µs of spinning, then 100 ms sleep slices.</summary>
    public static ShmWaitStrategy Default { get; } = new();

    /// <summary>Never spins: every wait goes straight to the semaphore (lowest CPU, highest latency).</summary>
    public static ShmWaitStrategy NoSpin { get; } = new() { SpinDuration = TimeSpan.Zero };

    /// <summary>How long a waiter spins before it sleeps. Zero means sleep at once.</summary>
    public TimeSpan SpinDuration { get; init; } = TimeSpan.FromMicroseconds(50);

    /// <summary>The longest single sleep; bounds how late a waiter notices a dead peer or a cancellation.</summary>
    public TimeSpan SleepSlice { get; init; } = TimeSpan.FromMilliseconds(100);

    internal void Validate()
    {
        if (SpinDuration < TimeSpan.Zero || SpinDuration > TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(SpinDuration), SpinDuration, "The spin duration must be between 0 and 1 second.");
        }

        if (SleepSlice < TimeSpan.FromMilliseconds(1) || SleepSlice > TimeSpan.FromSeconds(10))
        {
            throw new ArgumentOutOfRangeException(nameof(SleepSlice), SleepSlice, "The sleep slice must be between 1 ms and 10 s.");
        }
    }
}
