namespace ShmIpc;

// Python's JoinableQueue of typed values (ShmQueueOptions.Joinable): the members forward to the byte queue.
public sealed partial class ShmQueue<T>
{
    /// <summary>True when the queue was created with <see cref="ShmQueueOptions.Joinable"/> (<see cref="ShmQueue.IsJoinable"/>).</summary>
    public bool IsJoinable => Queue.IsJoinable;

    /// <summary>Values put by any process and not yet finished (<see cref="ShmQueue.UnfinishedTasks"/>).</summary>
    public long UnfinishedTasks => Queue.UnfinishedTasks;

    /// <summary>Marks one value done (<see cref="ShmQueue.TaskDone"/>).</summary>
    /// <inheritdoc cref="ShmQueue.TaskDone" path="/exception"/>
    public void TaskDone() => Queue.TaskDone();

    /// <summary>Completes when every value put so far is finished (<see cref="ShmQueue.JoinAsync"/>).</summary>
    public Task JoinAsync(CancellationToken cancellationToken = default) => Queue.JoinAsync(cancellationToken);
}
