using Microsoft.Extensions.Logging;

namespace ShmIpc;

/// <summary>Options of a <see cref="ShmPool"/>.</summary>
public sealed record class ShmPoolOptions
{
    /// <summary>The defaults.</summary>
    public static ShmPoolOptions Default { get; } = new();

    /// <summary>A static method (or capture-free lambda) run once in each worker before its first task.</summary>
    public Action? Initializer { get; init; }

    /// <summary>The initializer with an argument, set by <see cref="WithInitializer{TArg}"/>.</summary>
    internal (Delegate Target, Type ArgumentType, object? Argument)? InitializerWithArgument { get; private init; }

    /// <summary>
    /// These options with an initializer that takes an argument, as Python's <c>Pool(initializer=f, initargs=(a,))</c>:
    /// <paramref name="initializer"/>(<paramref name="argument"/>) runs once in each worker before its first task. The
    /// argument crosses as task arguments do (the pool's serializer); for several, take a tuple.
    /// </summary>
    /// <exception cref="ArgumentException">The initializer is not a static method or a capture-free lambda.</exception>
    public ShmPoolOptions WithInitializer<TArg>(Action<TArg> initializer, TArg argument)
    {
        ArgumentNullException.ThrowIfNull(initializer);
        return this with { Initializer = null, InitializerWithArgument = (initializer, typeof(TArg), argument) };
    }

    /// <summary>
    /// A worker is replaced by a fresh process after this many tasks (an Apply, or one chunk of a Map), as
    /// Python's <c>maxtasksperchild</c>. Null (default): workers live as long as the pool.
    /// </summary>
    public int? MaxTasksPerWorker { get; init; }

    /// <summary>Items per chunk for Map and friends when the call does not say. 0 (default): Map picks about four chunks per worker (per core when the pool has more workers than the machine has cores); Imap sends items one by one.</summary>
    public int DefaultChunkSize { get; init; }

    /// <summary>How arguments and results cross. Default: <see cref="ShmMessagePackSerializer"/>.</summary>
    public IShmObjectSerializer? Serializer { get; init; }

    /// <summary>Where worker starts, deaths and replacements are logged. None by default.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>
    /// How many times a task whose worker crashed (was killed, exited) is sent again to another worker
    /// before it fails with <see cref="ShmWorkerCrashedException"/>. Default 0: it fails at once.
    /// </summary>
    public int TaskRetries { get; init; }

    /// <summary>
    /// A task (an Apply, or one chunk) that runs longer than this is stopped: its worker is killed and replaced,
    /// and only that task fails, with a <see cref="TimeoutException"/>. Null (default): no limit.
    /// </summary>
    public TimeSpan? TaskTimeout { get; init; }

    /// <summary>Chunks sent to one worker ahead of its results: 2 keeps it busy without queueing much behind a slow task.</summary>
    public int MaxChunksInFlightPerWorker { get; init; } = 2;

    /// <summary>How workers and the pool wait on their pipes (spin, then sleep in slices).</summary>
    public ShmWaitStrategy? WaitStrategy { get; init; }

    /// <summary>Environment variables to set in the workers, on top of the parent's.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    internal void Validate()
    {
        if (MaxTasksPerWorker is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTasksPerWorker), MaxTasksPerWorker, "At least one task per worker, or null for no limit.");
        }

        if (DefaultChunkSize < 0 || TaskRetries < 0 || MaxChunksInFlightPerWorker < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(DefaultChunkSize), "DefaultChunkSize and TaskRetries must not be negative; MaxChunksInFlightPerWorker must be at least 1.");
        }

        if (TaskTimeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(TaskTimeout), timeout, "The task timeout must be positive, or null for none.");
        }
    }
}
