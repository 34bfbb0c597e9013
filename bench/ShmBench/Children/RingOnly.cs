using ShmIpc.Layout;
using ShmIpc.Ring;

namespace ShmIpc.Bench.Children;

/// <summary>
/// A queue's ring without the queue (issue 16, brief P step 1): the MPMC protocol's own per-message work, copies and
/// reclaim included, and nothing <see cref="ShmQueue"/> adds (call guard, validation, deadline, notify, metrics). Bench
/// only: no waiting (callers spin), no repair after dead peers, no shutdown handling beyond refusing. Used by the
/// instruction count ("instructions queue-ring N") and the queue scenario's ring-only throughput (the "queue-ring-*" roles),
/// so the difference to the queue's figures is the cost of the layers.
/// </summary>
internal static class RingOnly
{
    /// <summary>
    /// Appends <paramref name="message"/>; on a full ring, reclaims and retries once consumers have finished a batch, as the
    /// queue's waiting enqueue does (ShmQueue.TryEnqueueAfterBatch: an eighth of the ring, at most 64 KiB; the queue gives up
    /// on a batch after 10 us, the ring-only bench, whose consumer never falls that far behind, does not). False when still full.
    /// </summary>
    public static bool TryWrite(MpmcRing ring, ReadOnlySpan<byte> message)
    {
        WriteStatus status = ring.TryWrite(message);
        if (status == WriteStatus.Full && ring.ReclaimableBytes() >= Math.Max(Math.Min(ring.Capacity / 8, ShmQueue.ReclaimBatchLimit), QueueDescriptor.RecordSize(message.Length))
            && ring.TryReclaim(out _) > 0)
        {
            status = ring.TryWrite(message);
        }

        return status == WriteStatus.Written || (status == WriteStatus.Full ? false : throw new InvalidOperationException($"ring write: {status}"));
    }

    /// <summary>Takes the next message into <paramref name="destination"/>: its length, or -1 when none is ready.</summary>
    public static int TryRead(MpmcRing ring, Span<byte> destination, long reclaimThreshold)
    {
        if (ring.TryBeginRead(out ReadLease lease, out _, destination.Length) != ReadStatus.Claimed)
        {
            return -1;
        }

        lease.Payload.CopyTo(destination);
        ring.EndRead(lease);
        if (ring.ReclaimableBytes() >= reclaimThreshold)
        {
            ring.TryReclaim(out _);
        }

        return lease.Length;
    }
}
