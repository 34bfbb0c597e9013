using System.Diagnostics.CodeAnalysis;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;
using static ShmIpc.Layout.SideSegmentDescriptor;

namespace ShmIpc.SideSegments;

/// <summary>
/// One side segment, mapped: the payload of a message too long for its ring, written once by its sender and read in
/// place by the consumer that takes it (layout in <see cref="SideSegmentDescriptor"/>).
/// </summary>
/// <remarks>
/// Design: State is the one word that says who owns the segment; each transition is made in one place here:
/// <code>
///  from          event                                   to            who
///  (new)         created                                 0 writing     sender (<see cref="Create"/>)
///  0 writing     payload copied                          4 published   sender, release (<see cref="Publish"/>): pairs with the take's CAS
///  4 published   the ring record could not be written    6 free        sender, CAS (<see cref="Unpublish"/>)
///  4 published   a consumer takes the ring record        consumer id   consumer, CAS (<see cref="Take"/>)
///  consumer id   the consumer has read it                6 free        consumer, exchange (<see cref="Finish"/>)
///  6 free        the sender reuses it                    0 writing     sender, CAS (<see cref="TryReuse"/>)
///  consumer id   that consumer is proved dead            0 writing     sender, CAS (<see cref="TryReuse"/>)
/// </code>
/// The name goes when neither side needs it any more: the sender lets go by exchanging Retained to 0 and then looks at
/// State; the consumer finishes by exchanging State to free and then looks at Retained. Both are full fences (Dekker),
/// so at least one of them sees the other's store and unlinks (both may: unlinking twice is harmless, and a side
/// segment's name is never reused: it carries its creator's pid, start time and a sequence number).
/// A crash leaves a segment nobody maps; the stale sweep removes it once its owner by State is proved dead (<see cref="StaleReason"/>).
/// </remarks>
internal sealed unsafe class SideSegment : IDisposable
{
    private static long s_sequence;

    private readonly ShmSegment _segment;

    private SideSegment(ShmSegment segment) => _segment = segment;

    public string OsName => _segment.OsName;

    public long Capacity => _segment.DataSize;

    private byte* State => _segment.Control + StateOffset;

    private byte* Retained => _segment.Control + RetainedOffset;

    /// <summary>The payload, <paramref name="length"/> bytes of the data region (valid while this object is not disposed).</summary>
    public ReadOnlySpan<byte> Payload(long length) => new(_segment.Data, (int)Math.Min(length, _segment.DataSize));

    /// <summary>Creates a side segment of <paramref name="capacity"/> bytes for the host <paramref name="hostOsName"/>, in state "writing".</summary>
    /// <exception cref="IOException">The memory cannot be allocated (/dev/shm full), or no free name was found.</exception>
    public static SideSegment Create(string hostOsName, long capacity, bool groupAccess)
    {
        ProcessIdentity me = SharedMemoryPlatform.Current.CurrentProcess;
        for (int attempt = 0; ; attempt++)
        {
            string name = $"{NamePrefix}{me.Pid}-{(uint)me.StartTime:x8}-{Interlocked.Increment(ref s_sequence)}";
            try
            {
                return new SideSegment(ShmSegment.Create(name, SegmentKind.SideMessage, ControlSize, capacity, 0, groupAccess,
                    s => Initialize(s.Control, hostOsName)));
            }
            catch (IOException) when (attempt < 8 && SharedMemoryPlatform.Current.SegmentExists(ShmName.ToOsName(name)))
            {
                // Someone else holds this name (planted, or left by an earlier process of our pid): take the next one.
            }
        }
    }

    /// <summary>Opens the side segment a ring record names (the owner rules of its host apply).</summary>
    /// <exception cref="FileNotFoundException">It is gone.</exception>
    public static SideSegment Open(string osName, OwnerTrust trust)
    {
        if (!osName.StartsWith(ShmName.OsPrefix + NamePrefix, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"'{osName}' is not the name of a side segment.");
        }

        return new SideSegment(ShmSegment.Open(osName[ShmName.OsPrefix.Length..], SegmentKind.SideMessage, TimeSpan.FromSeconds(1), trust: trust));
    }

    /// <summary>Sender: takes the segment back for a new message when its last one is read (or its reader is proved dead).</summary>
    public bool TryReuse()
    {
        ulong state = (ulong)MappedAtomics.ReadInt64Acquire(State);
        bool reusable = state == StateFree || state == StateWriting
            || (WordTagDescriptor.IsIdentity(state) && !PeerLiveness.IsLiveIdentity(SharedMemoryPlatform.Current, state));
        return reusable && (ulong)MappedAtomics.CompareExchangeInt64(State, (long)StateWriting, (long)state) == state;
    }

    /// <summary>Sender: copies the message in and publishes it (state "published"); the ring record is written next.</summary>
    public void Publish(ReadOnlySpan<byte> message)
    {
        message.CopyTo(new Span<byte>(_segment.Data, message.Length));
        MappedAtomics.WriteInt64Plain(_segment.Control + LengthOffset, message.Length);

        // Pairs with the consumer's CAS in Take: the payload and Length are visible to whoever takes it.
        MappedAtomics.WriteInt64Release(State, (long)StatePublished);
    }

    /// <summary>Sender: the ring record was not written (timeout, cancellation, shutdown): nobody will read it.</summary>
    public void Unpublish() => MappedAtomics.CompareExchangeInt64(State, (long)StateFree, (long)StatePublished);

    /// <summary>Consumer: takes the published message for <paramref name="identity"/>; returns its length.</summary>
    public long Take(ulong identity, string hostName)
    {
        long found = MappedAtomics.CompareExchangeInt64(State, (long)identity, (long)StatePublished);
        if ((ulong)found != StatePublished)
        {
            ThrowNotPublished(hostName, (ulong)found);
        }

        long length = MappedAtomics.ReadInt64Plain(_segment.Control + LengthOffset);
        if ((ulong)length > (ulong)Capacity)
        {
            throw new InvalidDataException($"Side segment '{OsName}' of '{hostName}' announces {length} bytes in {Capacity}.");
        }

        return length;
    }

    /// <summary>Consumer: done reading. Frees it for its sender, or removes its name when the sender has let go.</summary>
    public void Finish()
    {
        MappedAtomics.ExchangeInt64(State, (long)StateFree);
        if (MappedAtomics.ReadInt32Acquire(Retained) == 0)
        {
            _segment.Unlink();
        }
    }

    /// <summary>Sender: lets go of the segment (it is not cached any more) and unmaps it; removes its name if nobody needs it.</summary>
    public void LetGo()
    {
        Interlocked.Exchange(ref *(int*)Retained, 0);
        ulong state = (ulong)MappedAtomics.ReadInt64Acquire(State);
        if (state == StateFree || state == StateWriting
            || (WordTagDescriptor.IsIdentity(state) && !PeerLiveness.IsLiveIdentity(SharedMemoryPlatform.Current, state)))
        {
            _segment.Unlink();
        }

        Dispose();
    }

    /// <summary>Unmaps (the name stays).</summary>
    public void Dispose() => _segment.Dispose();

    /// <summary>
    /// True when <paramref name="osName"/> is a side segment's name ("shmipc.side-PID-START-SEQ") and the process it names is
    /// proved dead: such a file is judged even when its creator died before it wrote the header.
    /// </summary>
    internal static bool IsCreatorDeadByName(string osName, ISharedMemoryPlatform platform)
    {
        string prefix = ShmName.OsPrefix + NamePrefix;
        if (!osName.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        string[] parts = osName[prefix.Length..].Split('-');
        return parts.Length == 3
            && int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)
            && uint.TryParse(parts[1], System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out uint start)
            && pid > 0
            && !platform.IsAlive(new ProcessIdentity(pid, start), PeerLiveness.StartTimeBits);
    }

    /// <summary>The sweep's verdict on a side segment, from its control block read through <paramref name="stream"/>.</summary>
    internal static string? StaleReason(FileStream stream, SegmentHeaderDescriptor.Fields header, ISharedMemoryPlatform platform)
    {
        Span<byte> control = stackalloc byte[ControlSize];
        stream.Position = (long)header.ControlOffset;
        if (header.ControlSize < ControlSize || stream.ReadAtLeast(control, ControlSize, throwOnEndOfStream: false) < ControlSize)
        {
            return "it is a side segment too short to judge";
        }

        return SideSegmentDescriptor.StaleReason(control, platform.IsAlive(header.Creator),
            word => PeerLiveness.IsLiveIdentity(platform, word), platform.SegmentExists);
    }

    [DoesNotReturn]
    private void ThrowNotPublished(string hostName, ulong state) =>
        throw new InvalidDataException($"A message of '{hostName}' names side segment '{OsName}', which holds no published message (state 0x{state:X}).");
}
