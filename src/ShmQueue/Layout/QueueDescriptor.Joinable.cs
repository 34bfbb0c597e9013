namespace ShmIpc.Layout;

/// <summary>
/// The word of a joinable queue (ShmQueueOptions.Joinable, native-notes/LAYOUT.md §6.11): Python's <c>JoinableQueue</c>
/// count of messages put and not yet marked done, kept in the control block so every process shares it.
/// <code>
///  control  size  field       writer                                                   readers
///  20       4     Features    creator, once (bit 1: joinable; never together with bit 0)   every opener
///  136      8     Unfinished  atomic add +1 by a producer after its claim and before its
///                             State = committed; CAS -1 by TaskDone (never below 0)         Join, UnfinishedTasks (acquire)
/// </code>
/// Unfinished lives on Tail's line: the producer that adds to it has just CASed Tail there, so a put costs one more
/// atomic on a line it already owns; TaskDone (once per message, by a consumer) pays the line transfer.
/// </summary>
internal static partial class QueueDescriptor
{
    /// <summary>Feature bit 1: the queue keeps Python's JoinableQueue count (put increments, TaskDone decrements).</summary>
    public const int FeatureJoinable = 2;

    public const int UnfinishedOffset = 136;
}
