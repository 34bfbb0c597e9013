using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using ShmIpc.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Memory;
using ShmIpc.Ring;
using ShmIpc.Signaling;

namespace ShmIpc;

/// <summary>
/// One end of a <see cref="ShmPipe"/>: sends messages (byte strings, possibly empty) to the other end
/// and receives the messages it sends, in order. The counterpart of Python's
/// <c>multiprocessing.connection.Connection</c>.
/// </summary>
/// <remarks>
/// <para>Any number of threads may send and receive on one end: concurrent sends (or receives) of one process take
/// turns, each message whole. Passed to a child <c>ShmProcess</c>, an end is shared (as in Python): the parent and
/// several children may all send (or receive) on it, each message whole and each received by one of them; a holder
/// killed in the middle cannot wedge the others. An end held by one process alone pays nothing for this.</para>
/// <para>When the other end closes or its process dies, the messages it sent are still delivered; then
/// receiving throws <see cref="ShmPeerClosedException"/>, as does sending. A dead peer is noticed
/// within one sleep slice of <see cref="ShmWaitStrategy"/> by a blocked call; a send that does not
/// have to wait notices a closed peer at once but a killed one only when the ring fills up.</para>
/// <para>Disposing an end while another thread of this process is blocked on it ends that call with
/// <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed unsafe partial class ShmConnection : IDisposable, IAsyncDisposable
{
    private readonly ShmSegment _segment;
    private readonly int _end;
    private readonly int _maxMessageLength;
    private readonly SpscRing? _receiveRing;
    private readonly SpscRing? _sendRing;
    private readonly WaitSignal? _receiveData;
    private readonly WaitSignal? _receiveSpace;
    private readonly WaitSignal? _sendData;
    private readonly WaitSignal? _sendSpace;
    private readonly byte* _ownSlot;
    private readonly byte* _peerSlot;
    private readonly ShmWaitStrategy _strategy;
    private readonly ILogger? _logger;
    private readonly ulong _ownerWord;
    private readonly bool _unlinkOnDispose;

    /// <summary>The pipe's name.</summary>
    public string Name => _segment.Name;

    /// <summary>The longest message this pipe carries, in bytes.</summary>
    public int MaxMessageLength => _maxMessageLength;

    /// <summary>True when this end can send (false for the creator's end of a one-way pipe).</summary>
    public bool CanSend => _sendRing is not null;

    /// <summary>True when this end can receive (false for the connector's end of a one-way pipe).</summary>
    public bool CanReceive => _receiveRing is not null;

    // ------------------------------------------------------------------ send

    /// <summary>Sends <paramref name="message"/>, waiting while the pipe is full.</summary>
    /// <exception cref="ArgumentException">The message is longer than <see cref="MaxMessageLength"/>; nothing was sent.</exception>
    /// <exception cref="ShmPeerClosedException">The other end is closed or its process died.</exception>
    /// <exception cref="ObjectDisposedException">This end was disposed (also by another thread during the wait).</exception>
    /// <exception cref="InvalidOperationException">This end only receives.</exception>
    public void Send(ReadOnlySpan<byte> message) => SendCore(message, long.MaxValue, CancellationToken.None);

    /// <summary>
    /// Sends <paramref name="message"/>, waiting while the pipe is full. (This overload exists so that a
    /// byte array is sent as itself rather than through the typed <see cref="Send{T}(T, IShmSerializer{T})"/>.)
    /// </summary>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte})" path="/exception"/>
    public void Send(byte[] message)
    {
        ArgumentNullException.ThrowIfNull(message);
        SendCore(message, long.MaxValue, CancellationToken.None);
    }

    /// <summary>Sends <paramref name="message"/>, waiting while the pipe is full until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <exception cref="OperationCanceledException">Cancelled before the message could be written; nothing was sent.</exception>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte})" path="/exception"/>
    public void Send(ReadOnlySpan<byte> message, CancellationToken cancellationToken) => SendCore(message, long.MaxValue, cancellationToken);

    /// <summary>Sends <paramref name="message"/> if there is room within <paramref name="timeout"/>; false (nothing sent) when the time ran out.</summary>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte})" path="/exception"/>
    public bool TrySend(ReadOnlySpan<byte> message, TimeSpan timeout) => SendCore(message, WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>Sends <paramref name="message"/>, waiting up to <paramref name="timeout"/> for room.</summary>
    /// <exception cref="TimeoutException">The pipe stayed full for <paramref name="timeout"/>; nothing was sent.</exception>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte})" path="/exception"/>
    public void Send(ReadOnlySpan<byte> message, TimeSpan timeout)
    {
        if (!TrySend(message, timeout))
        {
            ThrowTimeout("full", timeout);
        }
    }

    /// <summary>
    /// Writes <paramref name="message"/> without making it visible yet: the receiver gets it, with every message
    /// deferred before it, at the next <see cref="Send(ReadOnlySpan{byte})"/> or <see cref="Flush"/>, or as soon as
    /// 16 KiB of them are pending (an eighth of a smaller ring; they wait in a private buffer and go into the ring with
    /// one copy). Publishing and telling a sleeping receiver (a full fence, and a semaphore post
    /// when it sleeps) are then paid once per batch instead of once per message: the way to stream small messages,
    /// as one writes to a buffered socket and flushes it. Waits for room as <see cref="Send(ReadOnlySpan{byte})"/>
    /// does, publishing what is pending first (the receiver must see it to make room). Closing this end, or handing
    /// it over, delivers deferred messages too (waiting up to a second for room); a receive on this end that has to wait publishes them first (a request
    /// written with SendDeferred and never flushed cannot leave its sender waiting for the answer). When the peer is
    /// gone, deferred messages are dropped with it, as sent ones are.
    /// </summary>
    /// <exception cref="ArgumentException">The message is longer than <see cref="MaxMessageLength"/>.</exception>
    /// <exception cref="ShmPeerClosedException">The other end is closed or its process died.</exception>
    /// <exception cref="ObjectDisposedException">This end was disposed.</exception>
    /// <exception cref="InvalidOperationException">This end only receives.</exception>
    public void SendDeferred(ReadOnlySpan<byte> message) => SendCore(message, long.MaxValue, CancellationToken.None, defer: true);

    /// <summary>
    /// Makes the messages written by <see cref="SendDeferred"/> visible to the receiver, and wakes it if it sleeps. Waits
    /// for room, as <see cref="Send(ReadOnlySpan{byte})"/> does, when the ring is too full for the staged ones.
    /// </summary>
    /// <exception cref="ShmPeerClosedException">The other end is closed or its process died.</exception>
    /// <exception cref="ObjectDisposedException">This end was disposed.</exception>
    /// <exception cref="InvalidOperationException">This end only receives.</exception>
    public void Flush()
    {
        SpscRing ring = _sendRing ?? ThrowCannotSend();
        EnterSend(long.MaxValue, CancellationToken.None);
        try
        {
            if (ring.HasStaged)
            {
                UnstageWaiting(ring, long.MaxValue, CancellationToken.None);
            }

            if (ring.HasUnpublished)
            {
                ring.Publish();
                _sendData!.Notify();
            }
        }
        finally
        {
            ExitSend();
        }
    }

    /// <summary>The managed thread id running a <see cref="ReceiveMany"/> handler on this end, or 0.</summary>
    private int _handlerThread;

    /// <summary>A <see cref="ReceiveMany"/> handler disposed this end: the dispose completes when ReceiveMany returns.</summary>
    private volatile bool _disposeInHandler;

    /// <summary>On the thread of a ReceiveMany handler (which holds the receive guard): releases the space handled so far.</summary>
    private void ReleaseReceivedSpace()
    {
        if (_receiveRing is { UnreleasedBytes: > 0 } received)
        {
            received.PublishHead();
            _receiveSpace!.Notify();
        }
    }

    private bool SendCore(ReadOnlySpan<byte> message, long deadline, CancellationToken cancellationToken, bool defer = false,
        int type = Layout.SpscRingDescriptor.MessageType)
    {
        SpscRing ring = _sendRing ?? ThrowCannotSend();
        if (message.Length > _maxMessageLength && type == Layout.SpscRingDescriptor.MessageType)
        {
            return SendLarge(message, deadline, cancellationToken);
        }

        if (!EnterSend(deadline, cancellationToken))
        {
            return false;
        }

        try
        {
            if (IsPeerClosedCheap())
            {
                ThrowPeerClosed();
            }

            if (defer)
            {
                // Staged privately (see SpscRing.TryStage); when the staging buffer is full its records go into the
                // ring with a bulk copy and are published: one fence and one check for a sleeping receiver per batch.
                if (ring.TryStage(message))
                {
                    CountSent(message.Length);
                    return true;
                }

                if (!UnstageWaiting(ring, deadline, cancellationToken))
                {
                    return false;
                }

                if (ring.HasUnpublished)
                {
                    ring.Publish();
                    _sendData!.Notify();
                }

                if (ring.TryStage(message))
                {
                    CountSent(message.Length);
                    return true;
                }

                // Longer than the staging buffer: written into the ring directly, below.
            }
            else if (ring.HasStaged && !UnstageWaiting(ring, deadline, cancellationToken))
            {
                return false;
            }

            // A deferred message written directly is published anyway once a quarter of the ring is pending: the
            // receiver, which may be spinning on an empty ring meanwhile, never waits for more than that.
            bool publish = !defer || ring.UnpublishedBytes >= ring.Capacity / 4;
            if (!ring.TryWrite(message, publish, type))
            {
                if (ring.HasUnpublished)
                {
                    // Full: what is pending must be seen before the receiver can make room.
                    ring.Publish();
                    _sendData!.Notify();
                }

                if (Volatile.Read(ref _handlerThread) == Environment.CurrentManagedThreadId)
                {
                    // A ReceiveMany handler replying on a full ring: give back the space of the messages it has
                    // handled first, or a peer blocked sending to us (on exactly that space) and we would wait on
                    // each other for good. Head stops at the message in hand (committed after its handler).
                    ReleaseReceivedSpace();
                }

                if (!WaitAndWrite(ring, message, deadline, cancellationToken, type))
                {
                    return false;
                }
            }

            // Whatever this call published, the receiver is told once (Notify: a fence, then a post only if it
            // sleeps). A deferred write that published nothing tells nobody: that is its point.
            if (!ring.HasUnpublished)
            {
                _sendData!.Notify();
            }

            CountSent(message.Length);
            return true;
        }
        finally
        {
            ExitSend();
        }
    }

    // --------------------------------------------------------------- receive

    /// <summary>Receives the next message, waiting until one arrives.</summary>
    /// <exception cref="ShmPeerClosedException">The pipe is empty and the other end is closed or dead.</exception>
    /// <exception cref="ShmCorruptionException">The shared ring is inconsistent; nothing was consumed.</exception>
    /// <exception cref="ObjectDisposedException">This end was disposed (also by another thread during the wait).</exception>
    /// <exception cref="InvalidOperationException">A ReceiveMany handler receives on its own end, or this end only sends.</exception>
    public byte[] Receive() => Receive(CancellationToken.None);

    /// <summary>Receives the next message, waiting until one arrives or <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <exception cref="OperationCanceledException">Cancelled before a message arrived.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public byte[] Receive(CancellationToken cancellationToken)
    {
        TryReceiveCore(out byte[] message, long.MaxValue, cancellationToken);
        return message;
    }

    /// <summary>Receives the next message if one arrives within <paramref name="timeout"/>; false (and an empty array) when the time ran out.</summary>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public bool TryReceive(out byte[] message, TimeSpan timeout) => TryReceiveCore(out message, WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>Receives the next message, waiting up to <paramref name="timeout"/> for one.</summary>
    /// <exception cref="TimeoutException">No message came within <paramref name="timeout"/>.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public byte[] Receive(TimeSpan timeout) =>
        TryReceiveCore(out byte[] message, WaitSignal.DeadlineFrom(timeout), CancellationToken.None) ? message : ThrowTimeout<byte[]>("empty", timeout);

    private bool TryReceiveCore(out byte[] message, long deadline, CancellationToken cancellationToken)
    {
        var reader = new ArrayReader();
        bool got = ReceiveCore<ArrayReader, byte[]>(ref reader, deadline, cancellationToken, out byte[]? received, out _);
        message = received ?? [];
        return got;
    }

    /// <summary>
    /// The one receive path: takes the receive guard, waits for a record (publishing this end's deferred sends first),
    /// hands its payload to <paramref name="reader"/> in place and commits it, even when the reader throws (a message is
    /// never delivered twice). False when the deadline passed first, or when the record is longer than the reader takes
    /// and <paramref name="throwIfTooLarge"/> is false (it stays in the pipe; <paramref name="length"/> says how long it is).
    /// </summary>
    private bool ReceiveCore<TReader, TResult>(ref TReader reader, long deadline, CancellationToken cancellationToken,
        [MaybeNullWhen(false)] out TResult result, out int length, bool throwIfTooLarge = true, ShmWaitStrategy? strategy = null)
        where TReader : struct, IPayloadReader<TResult>
    {
        SpscRing ring = _receiveRing ?? ThrowCannotReceive();
        result = default;
        length = 0;
        if (!EnterReceive(deadline, cancellationToken))
        {
            return false;
        }

        try
        {
            if (!ring.TryPeek() && !WaitForRecord(ring, deadline, cancellationToken, strategy))
            {
                return false;
            }

            bool side = ring.PeekedIsSide;
            length = side ? SideLength(ring.PeekedPayload) : ring.PeekedLength;
            if (length > reader.MaxLength)
            {
                if (!throwIfTooLarge)
                {
                    return false;
                }

                ThrowBufferTooSmall(length, reader.MaxLength);
            }

            try
            {
                result = side ? ReadSide<TReader, TResult>(ref reader, ring.PeekedPayload) : reader.Read(ring.PeekedPayload);
            }
            finally
            {
                ring.Commit();
                CountConsumed(length);
                _receiveSpace!.Notify();
            }

            return true;
        }
        finally
        {
            ExitReceive();
        }
    }

    /// <summary>
    /// Receives the next message into <paramref name="buffer"/>, waiting until one arrives, and returns
    /// its length (Python's <c>recv_bytes_into</c>). Allocates nothing.
    /// </summary>
    /// <exception cref="ArgumentException">The message is longer than <paramref name="buffer"/>; it stays in the pipe, unread.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public int ReceiveInto(Span<byte> buffer)
    {
        ReceiveIntoCore(buffer, long.MaxValue, CancellationToken.None, out int length);
        return length;
    }

    /// <summary>
    /// Receives the next message into <paramref name="buffer"/>, waiting until one arrives or <paramref name="cancellationToken"/>
    /// is cancelled, and returns its length. Allocates nothing.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before a message arrived.</exception>
    /// <exception cref="ArgumentException">The message is longer than <paramref name="buffer"/>; it stays in the pipe, unread.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public int ReceiveInto(Span<byte> buffer, CancellationToken cancellationToken)
    {
        ReceiveIntoCore(buffer, long.MaxValue, cancellationToken, out int length);
        return length;
    }

    /// <summary>Receives the next message into <paramref name="buffer"/>, waiting up to <paramref name="timeout"/>, and returns its length. Allocates nothing.</summary>
    /// <exception cref="TimeoutException">No message came within <paramref name="timeout"/>.</exception>
    /// <exception cref="ArgumentException">The message is longer than <paramref name="buffer"/>; it stays in the pipe, unread.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public int ReceiveInto(Span<byte> buffer, TimeSpan timeout) =>
        ReceiveIntoCore(buffer, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out int length) ? length : ThrowTimeout<int>("empty", timeout);

    /// <summary>
    /// Receives the next message into <paramref name="buffer"/> if one arrives within <paramref name="timeout"/>
    /// (<see cref="TimeSpan.Zero"/>: only if one is there now). Allocates nothing.
    /// </summary>
    /// <returns>True with the message's <paramref name="length"/>; false when the time ran out.</returns>
    /// <exception cref="ArgumentException">The message is longer than <paramref name="buffer"/>; it stays in the pipe, unread.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public bool TryReceiveInto(Span<byte> buffer, out int length, TimeSpan timeout) =>
        ReceiveIntoCore(buffer, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out length);

    /// <summary>
    /// Receives every message waiting, up to <paramref name="maxMessages"/>, waiting up to <paramref name="timeout"/> for
    /// the first: each goes to <paramref name="handler"/> as a span over the pipe's shared memory, valid only during that
    /// call (no copy). Their space goes back to the sender at the end, and every eighth of the ring on the way: one
    /// release of the ring's Head and one check for a sender asleep on a full ring (a full fence) per batch instead of
    /// per message; with
    /// <see cref="SendDeferred"/> on the other side, the way to stream small messages. A message whose handler throws
    /// counts as received; the exception ends the batch and propagates. A handler may send on this end (its space is
    /// given back before such a send waits for room) and may dispose it (the batch stops, the end closes when
    /// ReceiveMany returns); it may not receive on it. The span lies in memory the sender shares:
    /// copy what you keep (a sender that broke the protocol could change it).
    /// </summary>
    /// <typeparam name="TState">What the handler needs (pass it instead of capturing it, and the call allocates nothing).</typeparam>
    /// <returns>How many messages the handler saw; 0 when the time ran out first.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxMessages"/> is not positive.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public int ReceiveMany<TState>(System.Buffers.ReadOnlySpanAction<byte, TState> handler, TState state, int maxMessages, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessages);
        SpscRing ring = _receiveRing ?? ThrowCannotReceive();
        long deadline = WaitSignal.DeadlineFrom(timeout);
        if (!EnterReceive(deadline, CancellationToken.None))
        {
            return 0;
        }

        int received = 0;
        try
        {
            if (!ring.TryPeek() && !WaitForRecord(ring, deadline, CancellationToken.None))
            {
                return 0;
            }

            Volatile.Write(ref _handlerThread, Environment.CurrentManagedThreadId);
            do
            {
                // Committed after the handler (in finally: a handler that throws does not see its message again), so
                // while it runs Head stays at or before this message: a Head released meanwhile (a send from the
                // handler that must wait for room, see SendCore) never gives the producer the bytes of this span.
                ReadOnlySpan<byte> payload = ring.PeekedPayload;
                received++;
                CountConsumed(payload.Length);
                try
                {
                    if (ring.PeekedIsSide)
                    {
                        HandleSide(handler, state, payload);
                    }
                    else
                    {
                        handler(payload, state);
                    }
                }
                finally
                {
                    ring.Commit(publish: false);
                }

                // Every eighth of the ring, the space handled so far goes back at once: a sender that filled the
                // ring writes while we read, instead of the two taking turns (the spans handed out are done with).
                if (ring.UnreleasedBytes >= ring.Capacity / 8)
                {
                    ring.PublishHead();
                    _receiveSpace!.Notify();
                }
            }
            while (received < maxMessages && !_disposeInHandler && _lifetime.IsOpen && ring.TryPeek());

            return received;
        }
        finally
        {
            if (ring.UnreleasedBytes > 0)
            {
                ring.PublishHead();
                _receiveSpace!.Notify();
            }

            Volatile.Write(ref _handlerThread, 0);
            ExitReceive();
            if (_disposeInHandler)
            {
                // The handler closed this end: done now that the receive has let go of the mapping (see Dispose).
                Dispose();
            }
        }
    }

    /// <summary>
    /// As <see cref="TryReceiveInto(Span{byte}, out int, TimeSpan)"/>, but a message longer than <paramref name="buffer"/>
    /// is not an error: it stays in the pipe and <paramref name="length"/> says how long it is (false, length greater
    /// than the buffer), so a caller that owns a growable buffer grows it and receives again without an exception.
    /// False with length 0: nothing came before the timeout.
    /// </summary>
    /// <param name="buffer">Receives the message.</param>
    /// <param name="length">The message's length.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="strategy">How to wait this time (null: this end's <see cref="ShmObjectOptions.WaitStrategy"/>).</param>
    internal bool TryReceiveIntoOrMeasure(Span<byte> buffer, out int length, TimeSpan timeout, ShmWaitStrategy? strategy = null) =>
        ReceiveIntoCore(buffer, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out length, throwIfTooSmall: false, strategy);

    private bool ReceiveIntoCore(Span<byte> buffer, long deadline, CancellationToken cancellationToken, out int length,
        bool throwIfTooSmall = true, ShmWaitStrategy? strategy = null)
    {
        fixed (byte* pointer = buffer)
        {
            var reader = new SpanReader(pointer, buffer.Length);
            return ReceiveCore<SpanReader, int>(ref reader, deadline, cancellationToken, out _, out length, throwIfTooSmall, strategy);
        }
    }

    // ---------------------------------------------------------------- metrics

    /// <summary>This process's instruments, kept here so that a message tests them through one field (see ShmMetrics.Current).</summary>
    private ShmMetrics.Instruments? _metrics;

    /// <summary>Counts a message sent: with no listener, a field load and the instruments' Enabled tests, nothing else.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountSent(int bytes)
    {
#if !SHM_NO_METRICS
        if ((_metrics ?? LoadMetrics()) is { SentEnabled: true })
        {
            RecordSentSlow(bytes);
        }
#endif
    }

    /// <summary>Counts a message consumed, as <see cref="CountSent"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountConsumed(int bytes)
    {
#if !SHM_NO_METRICS
        if ((_metrics ?? LoadMetrics()) is { ConsumedEnabled: true })
        {
            RecordConsumedSlow(bytes);
        }
#endif
    }

    /// <summary>The instruments once they exist (null in a child that defers them: it asks again at the next message).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ShmMetrics.Instruments? LoadMetrics() => _metrics = ShmMetrics.Current();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RecordSentSlow(int bytes) => ShmMetrics.RecordSent(ShmMetrics.KindPipe, Name, bytes);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RecordConsumedSlow(int bytes) => ShmMetrics.RecordConsumed(ShmMetrics.KindPipe, Name, bytes);

    // ----------------------------------------------------------- throw helpers

    [DoesNotReturn]
    private static SpscRing ThrowCannotSend() =>
        throw new InvalidOperationException("This end of a one-way pipe only receives (the creator's end receives, the connector's end sends).");

    [DoesNotReturn]
    private static SpscRing ThrowCannotReceive() =>
        throw new InvalidOperationException("This end of a one-way pipe only sends (the creator's end receives, the connector's end sends).");


    [DoesNotReturn]
    private static void ThrowBufferTooSmall(int length, int bufferLength, string paramName = "buffer") =>
        throw new ArgumentException($"The next message is {length} bytes and the buffer holds {bufferLength}; the message was left in the pipe.", paramName);

    /// <summary>A blocking call ran out of time: names the pipe, the end, what it waited for and how long.</summary>
    [DoesNotReturn]
    private T ThrowTimeout<T>(string state, TimeSpan timeout) =>
        throw new TimeoutException($"End {_end} of pipe '{Name}' stayed {state} for {timeout}.");

    [DoesNotReturn]
    private void ThrowTimeout(string state, TimeSpan timeout) => ThrowTimeout<bool>(state, timeout);

    [MethodImpl(MethodImplOptions.NoInlining)]
    [DoesNotReturn]
    private void ThrowPeerClosed() => throw new ShmPeerClosedException(Name, _peerGoneReason ?? "it closed its end");

    [DoesNotReturn]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(ShmConnection),
        _lifetime.State == EndpointLifetime.HandedOver ? $"This end of pipe '{Name}' was handed over to another process." : $"This end of pipe '{Name}' was disposed.");
}
