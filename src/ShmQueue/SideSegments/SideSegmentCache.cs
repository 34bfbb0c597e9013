using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc.SideSegments;

/// <summary>
/// An endpoint's side segments (messages longer than its ring takes): the last one it sent, kept for reuse, and the
/// last one it read, kept mapped. Creating and touching fresh shared memory costs about 10 µs per 4 KiB page on these
/// machines (a fresh 64 MiB takes ~170 ms, a reused one a memcpy), so a sender reuses its segment as soon as the
/// consumer hands it back (State free), and a consumer keeps the mapping of a segment its sender reuses.
/// </summary>
/// <remarks>
/// Design: each slot holds at most one segment and is taken out by <see cref="Interlocked.Exchange{T}(ref T, T)"/>
/// for the time of one message, so threads sending or receiving at once never share a segment: one finds the slot
/// empty and makes (or opens) its own; when two put theirs back, the loser's segment is let go. No lock, and no
/// mapping is unmapped while in use. The owning endpoint disposes this only when no call is in flight.
/// </remarks>
internal sealed unsafe class SideSegmentCache : IDisposable
{
    /// <summary>Side segments are made in steps of this size, so messages of similar sizes reuse one segment.</summary>
    private const long Granularity = 1 << 20;

    private readonly string _hostOsName;
    private readonly string _hostName;
    private readonly bool _groupAccess;
    private readonly OwnerTrust _trust;
    private readonly ulong _identity;
    private SideSegment? _sending;
    private SideSegment? _receiving;

    public SideSegmentCache(ShmSegment host, OwnerTrust trust, int maxLength)
    {
        _hostOsName = host.OsName;
        _hostName = host.Name;
        _groupAccess = (SegmentHeaderDescriptor.Read(host.Base).Flags & SegmentHeaderDescriptor.FlagGroupAccess) != 0;
        _trust = trust;
        _identity = host.Platform.CurrentProcess.ToWord();
        MaxLength = maxLength;
    }

    /// <summary>The longest message accepted (the options' MaxLargeMessageLength).</summary>
    public int MaxLength { get; }

    /// <summary>
    /// Copies <paramref name="message"/> into a side segment (the cached one if it is free and big enough) and publishes
    /// it. The caller writes the reference record (<see cref="WriteRecord"/>) and then calls <see cref="Return"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The message is longer than <see cref="MaxLength"/>.</exception>
    /// <exception cref="IOException">The shared memory for it cannot be allocated.</exception>
    public SideSegment Publish(ReadOnlySpan<byte> message, string what)
    {
        CheckLength(message.Length, what);

        SideSegment? side = Interlocked.Exchange(ref _sending, null);
        if (side is not null && (side.Capacity < message.Length || !side.TryReuse()))
        {
            side.LetGo();
            side = null;
        }

        if (side is null)
        {
            long capacity = Math.Max(Granularity, (message.Length + Granularity - 1) & ~(Granularity - 1));
            try
            {
                side = SideSegment.Create(_hostOsName, capacity, _groupAccess);
            }
            catch (IOException e)
            {
                throw new IOException($"A message of {message.Length} bytes for {what} '{_hostName}' needs a side segment of {capacity} bytes, " +
                    $"which could not be made: {e.Message} Nothing was written; the {what} is usable.", e);
            }
        }

        side.Publish(message);
        return side;
    }

    /// <summary>Refuses a message longer than <see cref="MaxLength"/> (<paramref name="what"/> is "queue" or "pipe").</summary>
    /// <exception cref="ArgumentException">It is longer.</exception>
    public void CheckLength(int length, string what, string paramName = "message")
    {
        if (length > MaxLength)
        {
            throw new ArgumentException($"A message of {length} bytes is longer than {what} '{_hostName}' accepts " +
                $"(MaxLargeMessageLength = {MaxLength} bytes); nothing was written.", paramName);
        }
    }

    /// <summary>The reference record naming <paramref name="side"/>, in <paramref name="record"/>; returns its length.</summary>
    public static int WriteRecord(SideSegment side, long length, Span<byte> record) =>
        SideSegmentDescriptor.WriteRecord(record, side.OsName, length);

    /// <summary>Puts <paramref name="side"/> back in the cache; unpublishes it first when its record was not written.</summary>
    public void Return(SideSegment side, bool published)
    {
        if (!published)
        {
            side.Unpublish();
        }

        Interlocked.Exchange(ref _sending, side)?.LetGo();
    }

    /// <summary>Follows a reference record: takes the message, hands it in place to <paramref name="reader"/>, frees it.</summary>
    public TResult Read<TReader, TResult>(ref TReader reader, ReadOnlySpan<byte> record)
        where TReader : struct, IPayloadReader<TResult>
    {
        if (SideSegmentDescriptor.TryReadRecord(record, out string osName, out _) is string problem)
        {
            throw new InvalidDataException($"'{_hostName}' holds {problem}.");
        }

        SideSegment? side = Interlocked.Exchange(ref _receiving, null);
        try
        {
            if (side is null || side.OsName != osName)
            {
                side?.Dispose();
                side = null;
                try
                {
                    side = SideSegment.Open(osName, _trust);
                }
                catch (FileNotFoundException e)
                {
                    throw new InvalidDataException($"A message of '{_hostName}' lives in side segment '{osName}', which is gone: that message is lost.", e);
                }
            }

            long length = side.Take(_identity, _hostName);
            try
            {
                return reader.Read(side.Payload(length));
            }
            finally
            {
                side.Finish();
            }
        }
        finally
        {
            if (side is not null)
            {
                Interlocked.Exchange(ref _receiving, side)?.Dispose();
            }
        }
    }

    /// <summary>Lets go of the cached segments (the endpoint is closing; no call is in flight).</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _sending, null)?.LetGo();
        Interlocked.Exchange(ref _receiving, null)?.Dispose();
    }
}
