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

    /// <summary>
    /// True (default): the child ends with its parent, however the parent ends (it is killed when the parent exits,
    /// and the kernel signals it if the parent dies). False: as Python's non-daemonic processes, the parent's normal
    /// exit (returning from Main, <c>Environment.Exit</c>) first waits for the child to end; a parent that is killed
    /// still takes the child with it.
    /// </summary>
    public bool Daemon { get; init; } = true;
}
