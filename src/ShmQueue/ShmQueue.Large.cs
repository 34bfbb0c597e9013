using System.Diagnostics.CodeAnalysis;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.SideSegments;
using ShmIpc.Signaling;

namespace ShmIpc;

// Messages longer than MaxMessageLength (issue 17): the payload goes into a side segment, copied once, and the ring
// carries a small record of kind 3 naming it (native-notes/LAYOUT.md §9). Consumers get an ordinary message; the
// in-place readers see the side segment's bytes. The side segments and their reuse are SideSegmentCache's.
public sealed partial class ShmQueue
{
    /// <summary>
    /// Sends a message longer than the ring takes: publishes it in a side segment, then enqueues the reference record
    /// as any message (waiting for space until <paramref name="deadline"/>). When the record is not written (timeout,
    /// cancellation, shutdown, disposal) the side segment is unpublished and kept for the next large message.
    /// </summary>
    private bool EnqueueLarge(ReadOnlySpan<byte> message, long deadline, CancellationToken cancellationToken)
    {
        CheckLength(message.Length);
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            if (_ring.ShutdownState != QueueDescriptor.ShutdownNone)
            {
                ThrowEnqueueShutDown(ShmIpc.Ring.WriteStatus.ShutDown);
            }

            // A caller that does not wait (TryEnqueue, the async waiters' retries) must not copy the payload for nothing.
            if (deadline <= WaitSignal.DeadlineFrom(TimeSpan.Zero) && !_ring.HasSpaceFor(SideSegmentDescriptor.MaxRecordLength)
                && !Reclaim() && !_ring.HasSpaceFor(SideSegmentDescriptor.MaxRecordLength))
            {
                return false;
            }

            SideSegment side = _sides.Publish(message, "queue");
            bool written = false;
            try
            {
                Span<byte> record = stackalloc byte[SideSegmentDescriptor.MaxRecordLength];
                int length = SideSegmentCache.WriteRecord(side, message.Length, record);
                written = WriteWaiting(record[..length], QueueDescriptor.KindSide, deadline, cancellationToken);
                return written;
            }
            finally
            {
                _sides.Return(side, written);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Hands a message to <paramref name="reader"/>: in place from the ring, or from its side segment.</summary>
    private TResult ReadPayload<TReader, TResult>(ref TReader reader, in ShmIpc.Ring.ReadLease lease)
        where TReader : struct, IPayloadReader<TResult> =>
        lease.Kind == QueueDescriptor.KindSide ? _sides.Read<TReader, TResult>(ref reader, lease.Payload) : reader.Read(lease.Payload);

    /// <summary>
    /// A message longer than the ring takes: refused above the options' MaxLargeMessageLength, and always on an
    /// acknowledged queue.
    /// </summary>
    /// <remarks>
    /// Design: an acknowledged queue keeps a taken record until it is acked and may hand it out again after its taker
    /// died, while a side segment is handed back to its sender (for reuse) or removed as soon as one consumer has read it.
    /// Redelivering it would need a second ownership protocol for the side segment, so acknowledged queues carry only
    /// ordinary records (LAYOUT.md §8): the refusal here, before anything is written, is the simpler correct choice.
    /// </remarks>
    private void CheckLargeLength(int length)
    {
        if (_acknowledged)
        {
            ThrowLargeOnAcknowledged(length);
        }

        _sides.CheckLength(length, "queue");
    }

    /// <summary>
    /// A side-segment record taken from an acknowledged queue (only a peer that ignored the refusal above writes one): its
    /// side segment is taken and handed back as by any reader (so its sender can reuse or remove it), the record is
    /// acked, and the call throws: the message is dropped rather than handed out as a reference record.
    /// </summary>
    [DoesNotReturn]
    private void DropSideRecord(in ShmIpc.Ring.ReadLease lease)
    {
        try
        {
            var discard = new DiscardReader();
            _sides.Read<DiscardReader, bool>(ref discard, lease.Payload);
        }
        finally
        {
            _ring.TryAck(lease);
        }

        throw new InvalidDataException($"Acknowledged queue '{Name}' held a side-segment record (a message longer than " +
            $"MaxMessageLength = {_ring.MaxMessageLength} bytes, written by a peer); acknowledged queues do not carry those, so it was dropped.");
    }

    private readonly struct DiscardReader : IPayloadReader<bool>
    {
        public int MaxLength => int.MaxValue;

        public bool Read(ReadOnlySpan<byte> payload) => true;
    }

    [DoesNotReturn]
    private void ThrowLargeOnAcknowledged(int length, string paramName = "message") =>
        throw new ArgumentException($"A message of {length} bytes is longer than acknowledged queue '{Name}' accepts " +
            $"(MaxMessageLength = {_ring.MaxMessageLength} bytes; acknowledged queues do not take larger messages through " +
            "side segments); nothing was written.", paramName);
}
