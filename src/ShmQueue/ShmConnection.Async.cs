using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ShmIpc.Async;
using ShmIpc.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

// The asynchronous forms.
public sealed partial class ShmConnection
{
    /// <summary>
    /// Sends <paramref name="message"/>. Completes synchronously when there is room; otherwise the call waits, without a
    /// thread of its own, on the process's async waiter threads (see <see cref="ReceiveAsync(CancellationToken)"/>).
    /// Calls of one end complete in the order they were made.
    /// </summary>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte}, CancellationToken)" path="/exception"/>
    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        PipeSendWaits waits = SendWaits();
        long waitStart = 0;
        try
        {
            if (!waits.HasPending && (SendCore(message.Span, NoWait, CancellationToken.None)
                || (SpinBeforePending(waits, new SpaceCondition(this, _sendRing!, message.Length), out waitStart) && SendCore(message.Span, NoWait, CancellationToken.None))))
            {
                return default;
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }

        AsyncOperation<bool> operation = waits.Sends.Rent();
        operation.Kind = PipeSendWaits.Send;
        operation.Message = message;
        operation.WaitStart = waitStart;
        ValueTask task = operation.AsValueTask();
        waits.Add(operation, cancellationToken);
        return task;
    }

    /// <summary>
    /// Receives the next message. Completes synchronously when one is waiting, or when one comes within a short spin:
    /// while this end's recent calls were answered quickly (a ping-pong), the call polls for up to the wait strategy's
    /// <see cref="ShmWaitStrategy.SpinDuration"/> (at most 50 us; none with <see cref="ShmWaitStrategy.NoSpin"/>) before it
    /// goes pending. Otherwise the call waits without a thread of its own: a few waiter threads per process (at most one per core) sleep on the semaphores of every pending call
    /// (futex_waitv on Linux) and complete it when a message arrives; the continuation runs on the thread pool. A pending
    /// call faults with <see cref="ShmPeerClosedException"/> when the peer closes or dies (checked every 100 ms), with
    /// <see cref="ObjectDisposedException"/> when this end is disposed, and is cancelled within milliseconds.
    /// </summary>
    /// <inheritdoc cref="Receive(CancellationToken)" path="/exception"/>
    public ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<byte[]>(cancellationToken);
        }

        PipeReceiveWaits waits = ReceiveWaits();
        long waitStart = 0;
        try
        {
            if (!waits.HasPending)
            {
                if (TryReceiveCore(out byte[] message, NoWait, CancellationToken.None))
                {
                    return new ValueTask<byte[]>(message);
                }

                FlushDeferredBeforeWaiting();
                if (SpinBeforePending(waits, new ReadableCondition(this, _receiveRing!), out waitStart) && TryReceiveCore(out message, NoWait, CancellationToken.None))
                {
                    return new ValueTask<byte[]>(message);
                }
            }
            else
            {
                FlushDeferredBeforeWaiting();
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException<byte[]>(e);
        }

        AsyncOperation<byte[]> operation = waits.Messages.Rent();
        operation.Kind = PipeReceiveWaits.Receive;
        operation.WaitStart = waitStart;
        ValueTask<byte[]> task = operation.AsValueTaskOfT();
        waits.Add(operation, cancellationToken);
        return task;
    }

    /// <summary>
    /// Receives the next message into <paramref name="buffer"/> and returns its length: the allocation-free form of
    /// <see cref="ReceiveAsync(CancellationToken)"/> (no array per message, no allocation per await in steady state).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="buffer"/> is shorter than the message (which stays in the pipe).</exception>
    /// <inheritdoc cref="Receive(CancellationToken)" path="/exception"/>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        PipeReceiveWaits waits = ReceiveWaits();
        long waitStart = 0;
        try
        {
            if (!waits.HasPending)
            {
                if (ReceiveIntoCore(buffer.Span, NoWait, CancellationToken.None, out int length))
                {
                    return new ValueTask<int>(length);
                }

                FlushDeferredBeforeWaiting();
                if (SpinBeforePending(waits, new ReadableCondition(this, _receiveRing!), out waitStart) && ReceiveIntoCore(buffer.Span, NoWait, CancellationToken.None, out length))
                {
                    return new ValueTask<int>(length);
                }
            }
            else
            {
                FlushDeferredBeforeWaiting();
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException<int>(e);
        }

        AsyncOperation<int> operation = waits.Lengths.Rent();
        operation.Kind = PipeReceiveWaits.ReceiveInto;
        operation.Buffer = buffer;
        operation.WaitStart = waitStart;
        ValueTask<int> task = operation.AsValueTaskOfT();
        waits.Add(operation, cancellationToken);
        return task;
    }

    /// <summary>
    /// Messages as they arrive, until <paramref name="cancellationToken"/> is cancelled or the peer closes its end (after
    /// its last message: then the sequence simply ends), as <see cref="ShmQueue.ReadAllAsync"/> on a queue.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This end was disposed while the sequence was read.</exception>
    public IAsyncEnumerable<byte[]> ReadAllAsync(CancellationToken cancellationToken = default) =>
        AsyncWaitQueue.ReadAll(ReceiveAsync, static e => e is ShmPeerClosedException, cancellationToken);

    /// <summary>Messages deserialized as they arrive, until the peer closes its end; see <see cref="ReadAllAsync(CancellationToken)"/>.</summary>
    /// <exception cref="ArgumentException">No serializer was given and <typeparamref name="T"/> has no built-in one.</exception>
    public async IAsyncEnumerable<T> ReadAllAsync<T>(IShmSerializer<T>? serializer = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        serializer = ShmSerializers.Resolve(serializer);
        await foreach (byte[] message in ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return serializer.Deserialize(message);
        }
    }

    /// <summary>
    /// This end's receiving side as a <see cref="ChannelReader{T}"/> of raw messages, for code written against
    /// System.Threading.Channels. <see cref="ChannelReader{T}.WaitToReadAsync"/> waits like <see cref="ReceiveAsync(CancellationToken)"/>
    /// (without consuming) and returns false once the peer closed its end and everything it sent was read;
    /// <see cref="ChannelReader{T}.TryRead"/> never blocks; <see cref="ChannelReader{T}.Completion"/> completes when this reader
    /// sees that end.
    /// </summary>
    /// <exception cref="InvalidOperationException">This end only sends.</exception>
    public ChannelReader<byte[]> AsChannelReader() => new ShmChannelReader<byte[]>(new PipeChannelEndpoint(this, reading: true), serializer: null);

    /// <summary>This end's receiving side as a <see cref="ChannelReader{T}"/> of deserialized values; see <see cref="AsChannelReader()"/>.</summary>
    /// <exception cref="ArgumentException">No serializer was given and <typeparamref name="T"/> has no built-in one.</exception>
    public ChannelReader<T> AsChannelReader<T>(IShmSerializer<T>? serializer = null) =>
        new ShmChannelReader<T>(new PipeChannelEndpoint(this, reading: true), ShmSerializers.Resolve(serializer));

    /// <summary>
    /// This end's sending side as a <see cref="ChannelWriter{T}"/> of raw messages. <see cref="ChannelWriter{T}.TryWrite"/>
    /// never blocks (false when the ring is full), <see cref="ChannelWriter{T}.WaitToWriteAsync"/> waits for room and returns
    /// false once the peer is gone; <see cref="ChannelWriter{T}.TryComplete"/> closes this end (as <see cref="Dispose"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">This end only receives.</exception>
    public ChannelWriter<byte[]> AsChannelWriter() => new ShmChannelWriter<byte[]>(new PipeChannelEndpoint(this, reading: false), serializer: null);

    /// <summary>This end's sending side as a <see cref="ChannelWriter{T}"/> of serialized values; see <see cref="AsChannelWriter()"/>.</summary>
    /// <exception cref="ArgumentException">No serializer was given and <typeparamref name="T"/> has no built-in one.</exception>
    public ChannelWriter<T> AsChannelWriter<T>(IShmSerializer<T>? serializer = null) =>
        new ShmChannelWriter<T>(new PipeChannelEndpoint(this, reading: false), ShmSerializers.Resolve(serializer));

    /// <summary>
    /// The adaptive spin of an async call that found nothing (no record to receive, no room to send), before it goes
    /// pending (<see cref="AsyncWaitQueue.CallerSpinDeadline"/>): true when <paramref name="condition"/> came to hold.
    /// <paramref name="waitStart"/> is when the caller began to wait.
    /// </summary>
    private bool SpinBeforePending<TCondition>(AsyncWaitQueue waits, TCondition condition, out long waitStart)
        where TCondition : struct, IWaitCondition
    {
        waitStart = Stopwatch.GetTimestamp();
        long until = waits.CallerSpinDeadline(_strategy, waitStart);
        if (until == 0)
        {
            return false;
        }

        // The guard keeps the mapping in place while we read the ring (a concurrent Dispose waits for it).
        EnterOther();
        try
        {
            bool ready = WaitSignal.Spin(ref condition, _strategy, until);
            waits.SpinEnded(ready);
            return ready;
        }
        finally
        {
            ExitOther();
        }
    }

    /// <summary>Would an async receive that finds nothing spin now (tests)? See <see cref="AsyncWaitQueue.CallerSpinDeadline"/>.</summary>
    internal bool ReceiveWouldSpin => Volatile.Read(ref _receiveWaits)?.WouldSpin(_strategy) == true;

    private PipeReceiveWaits ReceiveWaits()
    {
        if (_receiveRing is null)
        {
            ThrowCannotReceive();
        }

        return Volatile.Read(ref _receiveWaits) ?? CreateWaits(ref _receiveWaits, () => new PipeReceiveWaits(this));
    }

    private PipeSendWaits SendWaits()
    {
        if (_sendRing is null)
        {
            ThrowCannotSend();
        }

        return Volatile.Read(ref _sendWaits) ?? CreateWaits(ref _sendWaits, () => new PipeSendWaits(this));
    }

    private static TWaits CreateWaits<TWaits>(ref TWaits? field, Func<TWaits> create)
        where TWaits : class
    {
        TWaits created = create();
        return Interlocked.CompareExchange(ref field, created, null) ?? created;
    }

    /// <summary>The hook of <see cref="Stop"/>: pending async calls fault with ObjectDisposedException and leave their guards.</summary>
    private void StopAsyncWaits()
    {
        Volatile.Read(ref _receiveWaits)?.StopAndWait(EndpointLifetime.DrainTimeout);
        Volatile.Read(ref _sendWaits)?.StopAndWait(EndpointLifetime.DrainTimeout);
    }

    /// <summary>A non-blocking receive-side attempt for the async waiters; see <see cref="PipeReceiveWaits"/>.</summary>
    private bool TryServeReceive(AsyncOperation operation, bool checkPeers, out bool retry)
    {
        retry = false;
        SpscRing ring = _receiveRing!;
        ThrowIfStopped();
        if (checkPeers)
        {
            CheckPeerAlive();
        }

        if (!IsReadable(ring))
        {
            // Deferred messages still staged: the answer awaited may need them, and their room comes without a signal here.
            retry = _sendRing is { HasStaged: true };
            if (retry)
            {
                FlushDeferredBeforeWaiting();
            }

            return false;
        }

        if (TryReceiveNow(operation))
        {
            return true;
        }

        if (IsPeerClosedCheap())
        {
            // Closed (or dead) was seen before this last look: nothing more can come.
            if (TryReceiveNow(operation))
            {
                return true;
            }

            if (!_receiveGuard.IsHeld)
            {
                if (operation.Kind != PipeReceiveWaits.WaitToRead)
                {
                    ThrowPeerClosed();
                }

                ((AsyncOperation<bool>)operation).StageResult(false);
                return true;
            }
        }

        // Readable, but another receiver (a thread of ours, or a holder of a shared end) got there first or holds the guard.
        retry = true;
        return false;
    }

    private bool TryReceiveNow(AsyncOperation operation)
    {
        switch (operation.Kind)
        {
            case PipeReceiveWaits.Receive:
                if (TryReceiveCore(out byte[] message, NoWait, CancellationToken.None))
                {
                    ((AsyncOperation<byte[]>)operation).StageResult(message);
                    return true;
                }

                return false;
            case PipeReceiveWaits.ReceiveInto:
                if (ReceiveIntoCore(operation.Buffer.Span, NoWait, CancellationToken.None, out int length))
                {
                    ((AsyncOperation<int>)operation).StageResult(length);
                    return true;
                }

                return false;
            default:
                if (_shared ? _receiveRing!.HasDataShared() : _receiveRing!.HasData())
                {
                    ((AsyncOperation<bool>)operation).StageResult(true);
                    return true;
                }

                return false;
        }
    }

    /// <summary>A non-blocking send-side attempt for the async waiters; see <see cref="PipeSendWaits"/>.</summary>
    private bool TryServeSend(AsyncOperation operation, bool checkPeers, out bool retry)
    {
        retry = false;
        ThrowIfStopped();
        if (checkPeers)
        {
            CheckPeerAlive();
        }

        if (operation.Kind == PipeSendWaits.WaitToWrite)
        {
            if (IsPeerClosedCheap())
            {
                ((AsyncOperation<bool>)operation).StageResult(false);
                return true;
            }

            SpscRing ring = _sendRing!;
            if (_shared ? ring.HasSpaceForShared(0) : ring.HasSpaceFor(0))
            {
                ((AsyncOperation<bool>)operation).StageResult(true);
                return true;
            }

            return false;
        }

        if (SendCore(operation.Message.Span, NoWait, CancellationToken.None))
        {
            return true;
        }

        retry = _sendGuard.IsHeld;
        return false;
    }

    internal ValueTask<bool> WaitToReceiveAsync(CancellationToken cancellationToken) =>
        ReceiveWaits().WaitAsync(ReceiveWaits().Flags, PipeReceiveWaits.WaitToRead, cancellationToken);

    internal ValueTask<bool> WaitToSendAsync(CancellationToken cancellationToken) =>
        SendWaits().WaitAsync(SendWaits().Flags, PipeSendWaits.WaitToWrite, cancellationToken);

    /// <summary>Closed or handed over.</summary>
    internal bool IsDisposed => !_lifetime.IsOpen;

    private PipeReceiveWaits? _receiveWaits;
    private PipeSendWaits? _sendWaits;

    /// <summary>The pending async calls of one direction of this end; the owner's guard is <see cref="EnterOther"/>.</summary>
    private abstract class PipeWaits(ShmConnection connection, WaitSignal signal) : AsyncWaitQueue
    {
        public readonly OperationCache<bool> Flags = new();

        protected ShmConnection Connection => connection;

        protected override WaitSignal Signal => signal;

        protected override void EnterOwner() => connection.EnterOther();

        protected override void ExitOwner() => connection.ExitOther();
    }

    /// <summary>Receives, receives into a buffer, and waits to read (channel adapter) of one end, in arrival order.</summary>
    private sealed class PipeReceiveWaits(ShmConnection connection) : PipeWaits(connection, connection._receiveData!)
    {
        public const int Receive = 0;
        public const int ReceiveInto = 1;
        public const int WaitToRead = 2;

        public readonly OperationCache<byte[]> Messages = new();
        public readonly OperationCache<int> Lengths = new();

        protected override bool TryServe(AsyncOperation operation, bool checkPeers)
        {
            bool done = Connection.TryServeReceive(operation, checkPeers, out bool retry);
            if (retry)
            {
                RequestRetry();
            }

            return done;
        }
    }

    /// <summary>Sends and waits to write (channel adapter) of one end, in arrival order.</summary>
    private sealed class PipeSendWaits(ShmConnection connection) : PipeWaits(connection, connection._sendSpace!)
    {
        public const int Send = 0;
        public const int WaitToWrite = 1;

        public readonly OperationCache<bool> Sends = new();

        protected override bool TryServe(AsyncOperation operation, bool checkPeers)
        {
            bool done = Connection.TryServeSend(operation, checkPeers, out bool retry);
            if (retry)
            {
                RequestRetry();
            }

            return done;
        }
    }
}
