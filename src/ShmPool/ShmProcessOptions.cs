namespace ShmIpc;

/// <summary>Options of <see cref="ShmProcess.Start{TArg}(Action{TArg}, TArg, ShmProcessOptions?)"/>.</summary>
public sealed record class ShmProcessOptions
{
    /// <summary>The defaults.</summary>
    public static ShmProcessOptions Default { get; } = new();

    /// <summary>A name for the process (shown in messages and on its command line). Default "ShmProcess-N".</summary>
    public string? Name { get; init; }

    /// <summary>How the argument and the result cross. Default: <see cref="ShmMessagePackSerializer"/>.</summary>
    public IShmObjectSerializer? Serializer { get; init; }

    /// <summary>Environment variables to set in the child, on top of the parent's.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>How the parent waits for the child's result (spin, then sleep in slices).</summary>
    public ShmWaitStrategy? WaitStrategy { get; init; }
}
