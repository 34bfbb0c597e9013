using System.Buffers;
using ShmIpc.Diagnostics;
using ShmIpc.Ring;

namespace ShmIpc;

// The asynchronous forms.
public sealed partial class ShmConnection
{
    /// <summary>
    /// Sends <paramref name="message"/>. Completes synchronously when there is room; otherwise the wait for
    /// room runs on a dedicated thread.
    /// </summary>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte}, CancellationToken)" path="/exception"/>
    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            if (SendCore(message.Span, NoWait, CancellationToken.None))
            {
                return default;
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }

        return new ValueTask(Task.Factory.StartNew(
            () => Send(message.Span, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default));
    }

    /// <summary>
    /// Receives the next message. Completes synchronously when one is waiting; otherwise the wait runs on a
    /// dedicated thread.
    /// </summary>
    /// <inheritdoc cref="Receive(CancellationToken)" path="/exception"/>
    public ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<byte[]>(cancellationToken);
        }

        try
        {
            if (TryReceiveCore(out byte[] message, NoWait, CancellationToken.None))
            {
                return new ValueTask<byte[]>(message);
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException<byte[]>(e);
        }

        return new ValueTask<byte[]>(Task.Factory.StartNew(
            () => Receive(cancellationToken), cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default));
    }
}
