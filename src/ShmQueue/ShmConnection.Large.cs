using System.Buffers;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.SideSegments;

namespace ShmIpc;

// Messages longer than MaxMessageLength (issue 17), as the queue's (ShmQueue.Large.cs): the payload goes into a side
// segment, copied once, and the ring carries a record of type 3 naming it (native-notes/LAYOUT.md §9).
public sealed partial class ShmConnection
{
    private readonly SideSegmentCache _sides;

    /// <summary>
    /// Sends a message longer than the ring takes: publishes it in a side segment, then sends the reference record as any
    /// message. When the record is not sent (timeout, cancellation, peer gone) the side segment is unpublished and kept.
    /// </summary>
    private bool SendLarge(ReadOnlySpan<byte> message, long deadline, CancellationToken cancellationToken)
    {
        _sides.CheckLength(message.Length, "pipe");
        cancellationToken.ThrowIfCancellationRequested();
        if (IsPeerClosedCheap())
        {
            ThrowPeerClosed();
        }

        SideSegment side = _sides.Publish(message, "pipe");
        bool sent = false;
        try
        {
            Span<byte> record = stackalloc byte[SideSegmentDescriptor.MaxRecordLength];
            int length = SideSegmentCache.WriteRecord(side, message.Length, record);
            sent = SendCore(record[..length], deadline, cancellationToken, defer: false, SpscRingDescriptor.SideType);
            return sent;
        }
        finally
        {
            _sides.Return(side, sent);
        }
    }

    /// <summary>The length of the message a side reference announces (int.MaxValue for a malformed one: no reader takes it).</summary>
    private static int SideLength(ReadOnlySpan<byte> record) => SideSegmentDescriptor.AnnouncedLength(record);

    /// <summary>Hands the message a side reference names to <paramref name="reader"/>, in place.</summary>
    private TResult ReadSide<TReader, TResult>(ref TReader reader, ReadOnlySpan<byte> record)
        where TReader : struct, IPayloadReader<TResult> =>
        _sides.Read<TReader, TResult>(ref reader, record);

    /// <summary>ReceiveMany's handler, for a message in a side segment.</summary>
    private void HandleSide<TState>(ReadOnlySpanAction<byte, TState> handler, TState state, ReadOnlySpan<byte> record)
    {
        var reader = new SpanActionReader<TState>(handler, state);
        _sides.Read<SpanActionReader<TState>, bool>(ref reader, record);
    }

    private readonly struct SpanActionReader<TState>(ReadOnlySpanAction<byte, TState> handler, TState state) : IPayloadReader<bool>
    {
        public int MaxLength => int.MaxValue;

        public bool Read(ReadOnlySpan<byte> payload)
        {
            handler(payload, state);
            return true;
        }
    }
}
