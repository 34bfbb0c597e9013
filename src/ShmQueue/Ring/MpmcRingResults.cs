using System.Runtime.CompilerServices;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

/// <summary>What a consumer found at the read position.</summary>
internal enum ReadStatus
{
    /// <summary>A record was claimed for this consumer: read it through the lease, then <see cref="MpmcRing.EndRead"/>.</summary>
    Claimed,

    /// <summary>Nothing has been enqueued past the read position.</summary>
    Empty,

    /// <summary>The record at the read position is still being written; its producer is in <c>pending</c>.</summary>
    Pending,

    /// <summary>The next record is longer than the caller can take; it was left unread (its length is in <c>pending</c>).</summary>
    TooLarge,
}

/// <summary>What <see cref="MpmcRing.TryWrite"/> did.</summary>
internal enum WriteStatus
{
    /// <summary>The message is committed.</summary>
    Written,

    /// <summary>No room: nothing was claimed (the caller reclaims, waits, retries).</summary>
    Full,

    /// <summary>The queue is shut down: refused before claiming anything.</summary>
    ShutDown,

    /// <summary>
    /// The queue was shut down while this producer claimed its record: the record was marked abandoned, so
    /// nothing is delivered. Consumers may have been waiting for that record: the caller notifies them.
    /// </summary>
    ShutDownAbandoned,
}

/// <summary>A record this consumer has claimed: its bytes stay valid until <see cref="MpmcRing.EndRead"/>.</summary>
internal readonly unsafe struct ReadLease
{
    public ReadLease(long position, byte* record, int length, uint kind = KindMessage)
    {
        Position = position;
        Record = record;
        Length = length;
        Kind = kind;
    }

    /// <summary><see cref="KindMessage"/>, or <see cref="KindSide"/> when the payload is a side segment's reference record.</summary>
    public uint Kind { get; }

    public long Position { get; }

    public byte* Record { get; }

    public int Length { get; }

    public ReadOnlySpan<byte> Payload => new(Record + RecordHeaderSize, Length);
}

/// <summary>A record that blocks progress, and whom it waits for (or, for <see cref="ReadStatus.TooLarge"/>, its length in <see cref="Pid"/>).</summary>
internal readonly record struct Blocker(long Position, int Pid, ulong IdentityWord);
