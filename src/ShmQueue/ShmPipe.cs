using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc;

/// <summary>
/// A two-ended message pipe between processes, the counterpart of Python's
/// <c>multiprocessing.Pipe</c>: one process creates it and holds the first end, another (or the same)
/// connects and holds the second. Each end is a <see cref="ShmConnection"/>.
/// </summary>
public static class ShmPipe
{
    /// <summary>Creates the pipe <paramref name="name"/> and returns its first end (the creator's).</summary>
    /// <exception cref="ArgumentException">The name or an option is invalid.</exception>
    /// <exception cref="IOException">A live pipe or another object of that name exists.</exception>
    public static ShmConnection Create(string name, ShmPipeOptions? options = null)
    {
        options ??= new ShmPipeOptions();
        options.Validate();
        ShmName.Validate(name);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The pipe layout is little-endian; this machine is not.");
        }

        var geometry = new PipeDescriptor.Geometry(options.Capacity, options.EffectiveMaxMessageLength, options.Duplex ? 2 : 1);
        ulong creatorWord = SharedMemoryPlatform.Current.CurrentProcess.ToWord();
        ShmSegment segment = ShmSegment.Create(name, SegmentKind.Pipe, PipeDescriptor.ControlSize, (long)geometry.RingCount * geometry.Capacity,
            2 * geometry.RingCount, options.GroupAccess, s => InitializeControl(s, geometry, creatorWord), keep: !options.UnlinkOnDispose);
        return ShmConnection.Attach(segment, geometry, PipeDescriptor.CreatorEnd, options, options.UnlinkOnDispose, claimFrom: null, claimedWord: creatorWord);
    }

    /// <summary>
    /// Connects to the pipe <paramref name="name"/> and returns its second end. Only the pipe's shape is
    /// read from the segment; <paramref name="options"/> gives the waiting strategy and the logger.
    /// </summary>
    /// <exception cref="FileNotFoundException">No pipe of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The segment is not a valid pipe.</exception>
    /// <exception cref="InvalidOperationException">The pipe's second end is (or was) held by another connection.</exception>
    public static ShmConnection Connect(string name, ShmPipeOptions? options = null)
    {
        options ??= new ShmPipeOptions();
        ShmSegment segment = OpenValidated(name, options, out PipeDescriptor.Geometry geometry);
        ulong word = SharedMemoryPlatform.Current.CurrentProcess.ToWord();
        return ShmConnection.Attach(segment, geometry, PipeDescriptor.ConnectorEnd, options, unlinkOnDispose: false, claimFrom: 0, claimedWord: word);
    }

    private static unsafe void InitializeControl(ShmSegment segment, PipeDescriptor.Geometry geometry, ulong creatorWord) =>
        PipeDescriptor.Initialize(segment.Control, geometry, creatorWord, SleeperFence.MarkNewSegments);

    /// <summary>Opens a pipe's segment and validates its control block (Connect and handover share this).</summary>
    internal static unsafe ShmSegment OpenValidated(string name, ShmPipeOptions options, out PipeDescriptor.Geometry geometry)
    {
        options.ValidateCommon();
        ShmSegment segment = ShmSegment.Open(name, SegmentKind.Pipe, options.OpenTimeout, trust: options.Trust);
        string? problem = PipeDescriptor.Validate(segment.Control, segment.ControlSize, segment.DataSize, segment.SemaphoreCount, out geometry)
            ?? SleeperFence.ProblemWithMark(PipeDescriptor.HasAsymmetricFence(segment.Control));
        if (problem is not null)
        {
            segment.Dispose();
            throw new ShmInvalidSegmentException(name, ShmSegmentError.Corrupted, problem);
        }

        return segment;
    }
}
