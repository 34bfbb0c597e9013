namespace ShmIpc;

/// <summary>
/// Something <see cref="ShmWait"/> can wait for, together with others of any kind: Python's
/// <c>multiprocessing.connection.wait</c> objects. Implemented by <see cref="ShmQueue"/> and <see cref="ShmQueue{T}"/>
/// (ready when a dequeue would not wait: a message is there, or the queue is shut down and drained),
/// <see cref="ShmConnection"/> (ready when a receive would not wait: a message is there, or the other end is gone)
/// and <c>ShmProcess</c> of ShmPool (ready when the process has exited).
/// </summary>
/// <remarks>
/// The set is closed, as <see cref="WaitHandle"/>'s is: the members are internal to ShmIpc. Looking whether an
/// object is ready consumes nothing: a message found stays for the receive that follows. With other consumers
/// (a queue read by several processes) it is a hint: another consumer may take the message first.
/// </remarks>
public interface IShmWaitable
{
    /// <summary>
    /// Starts a wait: takes what keeps this object usable while it is polled (a queue's use count, a pipe end's
    /// receive guard, which refuses a concurrent receive on it). May throw <see cref="ObjectDisposedException"/>
    /// or <see cref="InvalidOperationException"/>; then the wait has not started on this object.
    /// </summary>
    internal void BeginWait()
    {
    }

    /// <summary>
    /// One look, between <see cref="BeginWait"/> and <see cref="EndWait"/>, on the waiting thread: true when ready.
    /// Cheap (shared-memory reads; liveness checks only at a bounded rate), never blocks, consumes nothing. Throws
    /// <see cref="ObjectDisposedException"/> when the object was disposed meanwhile.
    /// </summary>
    internal bool PollReady();

    /// <summary>Ends a wait begun by <see cref="BeginWait"/>.</summary>
    internal void EndWait()
    {
    }
}
