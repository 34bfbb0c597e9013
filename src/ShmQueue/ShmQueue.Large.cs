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

    /// <summary>A message longer than the ring takes: refused only above the options' MaxLargeMessageLength.</summary>
    private void CheckLargeLength(int length) => _sides.CheckLength(length, "queue");
}
