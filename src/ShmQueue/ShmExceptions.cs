namespace ShmIpc;

/// <summary>Why a shared-memory segment was refused when it was opened.</summary>
public enum ShmSegmentError
{
    /// <summary>The file is shorter than its header, or shorter than the size its header states.</summary>
    Truncated,

    /// <summary>The file does not start with the ShmIpc magic: it is not one of ours.</summary>
    ForeignFormat,

    /// <summary>The layout version is one this build does not understand (older or newer).</summary>
    UnsupportedVersion,

    /// <summary>The segment is of another kind (for example a pipe opened as a queue).</summary>
    WrongKind,

    /// <summary>A header field is out of range or inconsistent, or the header checksum does not match.</summary>
    Corrupted,

    /// <summary>The creator did not finish initialising the segment within the open timeout.</summary>
    NotInitialized,
}

/// <summary>
/// Base of the errors about shared data that another process wrote. (<see cref="InvalidDataException"/>
/// is sealed, so ShmIpc's data errors derive from <see cref="IOException"/>, as it does not.)
/// </summary>
public abstract class ShmDataException : IOException
{
    /// <summary>Creates the exception.</summary>
    protected ShmDataException(string segmentName, string message)
        : base(message)
    {
        SegmentName = segmentName;
    }

    /// <summary>The name of the segment (queue, pipe) concerned.</summary>
    public string SegmentName { get; }
}

/// <summary>
/// A shared-memory segment was refused because its header is wrong, truncated, of another version,
/// of another kind or corrupted. Nothing was read beyond the mapping.
/// </summary>
public sealed class ShmInvalidSegmentException : ShmDataException
{
    /// <summary>Creates the exception for a segment and a reason.</summary>
    public ShmInvalidSegmentException(string segmentName, ShmSegmentError error, string detail)
        : base(segmentName, $"Shared-memory segment '{segmentName}' was refused ({error}): {detail}")
    {
        Error = error;
    }

    /// <summary>The category of the problem.</summary>
    public ShmSegmentError Error { get; }
}

/// <summary>
/// Shared state written by another process is inconsistent (a record header out of bounds, an
/// impossible length). The operation was stopped before any out-of-bounds access.
/// </summary>
public sealed class ShmCorruptionException : ShmDataException
{
    /// <summary>Creates the exception for a segment, a ring position and a description.</summary>
    public ShmCorruptionException(string segmentName, long position, string detail)
        : base(segmentName, $"Shared-memory segment '{segmentName}' is corrupted at position {position}: {detail}")
    {
        Position = position;
    }

    /// <summary>The ring position (a byte counter that only grows) where the problem was found.</summary>
    public long Position { get; }
}

/// <summary>
/// The other end of a connection closed it or died: no more messages will arrive, and messages sent
/// now would never be read. Messages the peer sent before closing are delivered before this is thrown.
/// </summary>
public sealed class ShmPeerClosedException : EndOfStreamException
{
    /// <summary>Creates the exception for a connection.</summary>
    public ShmPeerClosedException(string name, string detail)
        : base($"The peer of '{name}' is gone: {detail}")
    {
        Name = name;
    }

    /// <summary>The name of the pipe or queue.</summary>
    public string Name { get; }
}

/// <summary>
/// The queue has been shut down (<see cref="ShmQueue.Shutdown"/>, by any process): enqueuing is refused, and a
/// dequeue throws this once nothing is left to drain (at once after an immediate shutdown). Python's
/// <c>queue.ShutDown</c>. Like <c>System.Threading.Channels.ChannelClosedException</c>, it is an
/// <see cref="InvalidOperationException"/>: the queue is in a state where the call cannot be made.
/// </summary>
public sealed class ShmQueueShutDownException : InvalidOperationException
{
    /// <summary>Creates the exception for a queue.</summary>
    /// <param name="queueName">The queue's name.</param>
    /// <param name="detail">What was refused and why, for the message.</param>
    public ShmQueueShutDownException(string queueName, string detail)
        : base($"Queue '{queueName}' has been shut down: {detail}")
    {
        QueueName = queueName;
    }

    /// <summary>The name of the queue.</summary>
    public string QueueName { get; }
}
