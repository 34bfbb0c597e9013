using ShmIpc.Layout;

namespace ShmIpc;

public sealed partial class ShmQueueOptions
{
    /// <summary>
    /// Python's <c>JoinableQueue</c> (fixed by the creator; openers read it from the queue): every message put counts as
    /// unfinished until some process calls <see cref="ShmQueue.TaskDone"/> for it, and <see cref="ShmQueue.Join(CancellationToken)"/>
    /// waits for the count to reach 0. The count lives in the queue's shared memory. Default false. Not together with
    /// <see cref="Acknowledged"/>, which is joinable already (Ack is TaskDone) and, unlike this count, survives killed consumers.
    /// </summary>
    public bool Joinable { get; set; }

    /// <summary>The layout version the queue is created with: 3 for a queue with features, so older peers refuse it.</summary>
    internal uint LayoutVersion => Acknowledged || Joinable || Signaling.SleeperFence.MarkNewSegments ? SegmentHeaderDescriptor.FeaturesLayoutVersion : SegmentHeaderDescriptor.CurrentLayoutVersion;
}
