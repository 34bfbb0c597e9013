using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc.SideSegments;

/// <summary>
/// An endpoint's side segments (messages longer than its ring takes): the last few it sent, kept for reuse, and the
/// last one it read, kept mapped. Creating and touching fresh shared memory costs about 10 µs per 4 KiB page on these
/// machines (a fresh 64 MiB takes ~170 ms, a reused one a memcpy), so a sender reuses a segment as soon as the
/// consumer hands it back (State free), and a consumer keeps the mapping of a segment its sender reuses. A sender keeps
/// up to <see cref="SendingSlots"/> segments, so that as many large messages in flight at once (queued and not yet read)
/// each find one of their own again once read, instead of fresh memory for every message but the first.
/// </summary>
/// <remarks>
/// Design: each slot holds at most one segment and is taken out by <see cref="Interlocked.Exchange{T}(ref T, T)"/>
/// for the time of one message, so threads sending or receiving at once never share a segment. A sender looks at each
/// sending slot in turn: a segment it cannot reuse yet (in flight, or too small) goes back into its slot (by CAS from
/// empty; if another thread filled the slot meanwhile, it is let go). A segment is put back into an empty slot, or, when
/// all are full, in place of the smallest one, which is let go (a let-go segment still in flight is removed by its
/// reader). No lock, and no mapping is unmapped while in use. The owning endpoint disposes this only when no call is
/// in flight.
/// </remarks>
internal sealed unsafe class SideSegmentCache : IDisposable
{
    /// <summary>Side segments are made in steps of this size, so messages of similar sizes reuse one segment.</summary>
    private const long Granularity = 1 << 20;

    /// <summary>Side segments a sender keeps for reuse: its large messages in flight at once that reuse memory.</summary>
    private const int SendingSlots = 4;

    private readonly string _hostOsName;
    private readonly string _hostName;
    private readonly bool _groupAccess;
    private readonly OwnerTrust _trust;
    private readonly ulong _identity;
    private readonly SideSegment?[] _sending = new SideSegment?[SendingSlots];
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

        SideSegment? side = TakeReusable(message.Length);
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

    /// <summary>A kept segment of at least <paramref name="length"/> bytes whose last message was read, taken for reuse; null if none.</summary>
    private SideSegment? TakeReusable(int length)
    {
        for (int i = 0; i < _sending.Length; i++)
        {
            SideSegment? candidate = Interlocked.Exchange(ref _sending[i], null);
            if (candidate is null)
            {
                continue;
            }

            if (candidate.Capacity >= length && candidate.TryReuse())
            {
                return candidate;
            }

            // Still in flight, or too small for this one: kept for a later message.
            if (Interlocked.CompareExchange(ref _sending[i], candidate, null) is not null)
            {
                candidate.LetGo();
            }
        }

        return null;
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

        int smallest = 0;
        for (int i = 0; i < _sending.Length; i++)
        {
            if (Interlocked.CompareExchange(ref _sending[i], side, null) is null)
            {
                return;
            }

            if ((Volatile.Read(ref _sending[i])?.Capacity ?? 0) < (Volatile.Read(ref _sending[smallest])?.Capacity ?? 0))
            {
                smallest = i;
            }
        }

        Interlocked.Exchange(ref _sending[smallest], side)?.LetGo();
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
        for (int i = 0; i < _sending.Length; i++)
        {
            Interlocked.Exchange(ref _sending[i], null)?.LetGo();
        }

        Interlocked.Exchange(ref _receiving, null)?.Dispose();
    }
}
