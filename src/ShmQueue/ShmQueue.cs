using System.Buffers;
using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ShmIpc.Diagnostics;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Ring;
using ShmIpc.Signaling;
using ShmIpc.Timing;

namespace ShmIpc;

/// <summary>
/// Reads a message in place, before its space is released: <paramref name="message"/> lies in the queue's shared ring
/// (no copy) and is valid only until the reader returns; then its space is reclaimed and producers write over it.
/// Copy what you keep (<c>message.ToArray()</c>), and do not store the span anywhere.
/// </summary>
/// <typeparam name="TState">Caller state passed through without allocation.</typeparam>
/// <typeparam name="TResult">What the reader makes of the message.</typeparam>
public delegate TResult ShmMessageReader<TState, TResult>(ReadOnlySpan<byte> message, TState state);

/// <summary>
/// A cross-process queue of variable-length byte messages in shared memory: any number of processes
/// enqueue and dequeue at once (the counterpart of Python's <c>multiprocessing.Queue</c>). Each message is
/// delivered whole, exactly once, to one consumer; messages from one producer arrive in the order it sent them.
/// </summary>
/// <remarks>
/// <para>Lock-free: producers and consumers claim records with atomic operations; no syscall is made per
/// message while nobody sleeps. Blocking calls spin briefly, then sleep on a named semaphore that is
/// posted only when someone sleeps.</para>
/// <para>Crashes: a producer killed while writing loses only that message (consumers skip it once its
/// process is proved dead, by pid and start time); a consumer killed while reading loses only the
/// message it had taken (an acknowledged queue delivers it again instead: <see cref="ShmQueueOptions.Acknowledged"/>). Space is reclaimed in order, so a consumer that is paused (not dead) in the
/// middle of reading one message makes producers wait once the ring wraps around to that message;
/// other consumers are not held up.</para>
/// <para>Shutdown (Python 3.13's <c>Queue.shutdown</c>): after <see cref="Shutdown"/>, by any process, enqueuing
/// throws <see cref="ShmQueueShutDownException"/> in every process, and dequeuing returns what is left, then
/// throws it instead of waiting (immediate shutdown: at once). The state lives in the queue's shared memory.</para>
/// <para>All members are thread-safe. Disposing ends waits of other threads with <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed unsafe partial class ShmQueue : IDisposable, IAsyncDisposable, IShmWaitable
{
    private readonly ShmSegment _segment;
    private readonly MpmcRing _ring;
    private readonly NamedSemaphore _dataSemaphore;
    private readonly NamedSemaphore _spaceSemaphore;
    private readonly WaitSignal _dataSignal;
    private readonly WaitSignal _spaceSignal;
    private readonly ShmWaitStrategy _wait;
    private readonly ILogger _logger;
    private readonly ISharedMemoryPlatform _platform;
    private readonly bool _unlinkOnDispose;
    private readonly long _reclaimThreshold;

    /// <summary>
    /// What a producer that may wait lets consumers finish before it reclaims a full ring (an eighth of it, at most 64 KiB):
    /// see <see cref="TryEnqueueAfterBatch"/>.
    /// </summary>
    private readonly long _reclaimBatch;
    private readonly SideSegments.SideSegmentCache _sides;
    private readonly bool _acknowledged;
    private readonly ShmQueueOptions _deadLetterOptions;
    private EndpointLifetime _lifetime;

    private ShmQueue(ShmSegment segment, ShmQueueOptions options)
    {
        _segment = segment;
        _platform = segment.Platform;
        ProcessIdentity me = _platform.CurrentProcess;
        _ring = new MpmcRing(segment.Control, segment.Data, segment.Name, me.Pid, me.ToWord());
        _dataSemaphore = segment.OpenSemaphore(QueueDescriptor.DataSemaphore);
        _spaceSemaphore = segment.OpenSemaphore(QueueDescriptor.SpaceSemaphore);
        bool asymmetric = QueueDescriptor.HasAsymmetricFence(segment.Control); // LAYOUT §4, SleeperFence
        _dataSignal = new WaitSignal((int*)(segment.Control + QueueDescriptor.DataSleepersOffset), _dataSemaphore, asymmetric) { MetricKind = ShmMetrics.KindQueue };
        _spaceSignal = new WaitSignal((int*)(segment.Control + QueueDescriptor.SpaceSleepersOffset), _spaceSemaphore, asymmetric) { MetricKind = ShmMetrics.KindQueue };
        _wait = options.WaitStrategy;
        _logger = options.Logger ?? NullLogger.Instance;
        _unlinkOnDispose = segment.IsCreator && options.UnlinkOnDispose;
        _reclaimThreshold = _ring.Capacity / 4;
        _reclaimBatch = Math.Min(_ring.Capacity / 8, ReclaimBatchLimit);
        _sides = new SideSegments.SideSegmentCache(segment, options.Trust, options.MaxLargeMessageLength);
        _acknowledged = _ring.IsAcknowledged;
        _deadLetterOptions = options;
        ShmMetrics.Track(this);
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _segment.Name;

    /// <summary>The ring itself, for tests that play a peer caught half-way (claimed, never committed).</summary>
    internal MpmcRing Ring => _ring;

    /// <summary>The data semaphore's count (tests check that it stays bounded).</summary>
    internal int DataSemaphoreCount => _dataSemaphore.CurrentCount;

    /// <summary>Consumers registered as sleeping (tests wait for a consumer to be asleep).</summary>
    internal int SleepingConsumers => MappedAtomics.ReadInt32Acquire(_segment.Control + QueueDescriptor.DataSleepersOffset);

    /// <summary>Producers registered as sleeping (tests wait for a producer to be asleep on a full queue).</summary>
    internal int SleepingProducers => MappedAtomics.ReadInt32Acquire(_segment.Control + QueueDescriptor.SpaceSleepersOffset);

    /// <summary>The ring's size in bytes.</summary>
    public long Capacity => _ring.Capacity;

    /// <summary>
    /// The longest message carried in the ring itself, in bytes. Longer ones (up to <see cref="ShmQueueOptions.MaxLargeMessageLength"/>)
    /// are accepted too: each goes through a side segment (copied in once, read in place by the consumer).
    /// </summary>
    public int MaxMessageLength => _ring.MaxMessageLength;

    /// <summary>
    /// The number of messages waiting (Python's <c>qsize</c>): a snapshot, already stale when it returns.
    /// 0 after an immediate <see cref="Shutdown"/>: what is left will never be delivered (it stays in the
    /// ring, unread, until the queue is removed). After a draining shutdown, the messages left to drain.
    /// </summary>
    public int Count
    {
        get
        {
            Enter();
            try
            {
                return _ring.ShutdownState == QueueDescriptor.ShutdownImmediate ? 0
                    : _ring.CountMessages() + (_acknowledged ? _ring.CountDeliveries().Released : 0);
            }
            finally
            {
                Exit();
            }
        }
    }

    /// <summary>True when no message is waiting (a snapshot).</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>True once any process has called <see cref="Shutdown"/> on this queue. It never becomes false again.</summary>
    public bool IsShutDown
    {
        get
        {
            Enter();
            try
            {
                return _ring.ShutdownState != QueueDescriptor.ShutdownNone;
            }
            finally
            {
                Exit();
            }
        }
    }

    /// <summary>
    /// Shuts the queue down for every process that uses it (Python 3.13's <c>Queue.shutdown</c>): from now on
    /// <see cref="Enqueue(ReadOnlySpan{byte})"/>, <see cref="TryEnqueue(ReadOnlySpan{byte})"/> and
    /// <see cref="EnqueueAsync"/> throw <see cref="ShmQueueShutDownException"/> (producers waiting on a full queue
    /// too); dequeues return the messages left, then throw it instead of waiting, and <see cref="ReadAllAsync"/>
    /// completes. Waiters asleep in any process are woken at once. Cannot be undone.
    /// </summary>
    /// <remarks>
    /// An enqueue that runs at the same moment either fails or is delivered by the drain; never both, never
    /// lost in between. Calling it again is harmless; <c>Shutdown(immediate: true)</c> after a draining
    /// shutdown discards what is still left.
    /// </remarks>
    /// <param name="immediate">
    /// Also discard what is queued: dequeues throw at once, <see cref="Count"/> reads 0, and the messages are
    /// never delivered (a message a consumer had already taken is still handed to it).
    /// </param>
    /// <exception cref="ObjectDisposedException">This queue object was disposed.</exception>
    public void Shutdown(bool immediate = false)
    {
        Enter();
        try
        {
            int before = _ring.RaiseShutdown(immediate ? QueueDescriptor.ShutdownImmediate : QueueDescriptor.ShutdownDrain);

            // After the CAS (a full fence), wake every sleeper of both kinds in every process: their conditions
            // now hold (the word is part of them), so each wakes, looks, and throws or drains. Notify's own fence
            // and the sleepers' register-then-recheck make this lossless (LAYOUT.md §4).
            _dataSignal.Notify();
            _spaceSignal.Notify();
            if (before < (immediate ? QueueDescriptor.ShutdownImmediate : QueueDescriptor.ShutdownDrain))
            {
                _logger.LogDebug("Queue {Name}: shut down{How} by process {Pid}.", Name, immediate ? " immediately" : "", Environment.ProcessId);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Creates a queue. Fails if a live queue of that name exists; a stale one left by a dead process is replaced.</summary>
    /// <exception cref="ArgumentException">The name breaks the naming rules, or an option is out of range.</exception>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmQueue Create(string name, ShmQueueOptions? options = null)
    {
        options ??= new ShmQueueOptions();
        options.Validate();
        long capacity = options.Capacity;
        int maxLength = options.ResolveMaxMessageLength();
        ShmSegment segment = ShmSegment.Create(name, SegmentKind.Queue, QueueDescriptor.ControlSize, capacity, QueueDescriptor.SemaphoreCount,
            options.GroupAccess, s =>
            {
                QueueDescriptor.Initialize(s.Control, s.Data, capacity, maxLength);
                QueueDescriptor.InitializeFeatures(s.Control, options.Acknowledged, options.Joinable, options.MaxDeliveries ?? 0, SleeperFence.MarkNewSegments);
            }, keep: !options.UnlinkOnDispose, layoutVersion: options.LayoutVersion);
        return Wrap(segment, options);
    }

    /// <summary>Opens an existing queue, validating its header and control block.</summary>
    /// <exception cref="FileNotFoundException">No queue of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The segment is not a valid queue of this layout version.</exception>
    public static ShmQueue Open(string name, ShmQueueOptions? options = null)
    {
        options ??= new ShmQueueOptions();
        options.ValidateCommon();
        ShmSegment segment = ShmSegment.Open(name, SegmentKind.Queue, options.OpenTimeout, trust: options.Trust);
        string? problem = QueueDescriptor.Validate(segment.Control, segment.ControlSize, segment.DataSize, segment.SemaphoreCount)
            ?? SleeperFence.ProblemWithMark(QueueDescriptor.HasAsymmetricFence(segment.Control));
        if (problem is not null)
        {
            segment.Dispose();
            throw new ShmInvalidSegmentException(name, ShmSegmentError.Corrupted, problem);
        }

        return Wrap(segment, options);
    }

    /// <summary>Opens the queue if it exists, else creates it with <paramref name="options"/>.</summary>
    public static ShmQueue OpenOrCreate(string name, ShmQueueOptions? options = null)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return Open(name, options);
            }
            catch (FileNotFoundException)
            {
            }

            try
            {
                return Create(name, options);
            }
            catch (IOException) when (attempt < 3)
            {
                // Someone created it between our two calls: open theirs.
            }
        }
    }

    private static ShmQueue Wrap(ShmSegment segment, ShmQueueOptions options)
    {
        try
        {
            return new ShmQueue(segment, options);
        }
        catch
        {
            if (segment.IsCreator)
            {
                segment.Unlink();
            }

            segment.Dispose();
            throw;
        }
    }

    // ---- Enqueue ----------------------------------------------------------------------------------

    /// <summary>Appends a message without waiting. False when the queue is full.</summary>
    /// <exception cref="ArgumentException">The message is longer than <see cref="ShmQueueOptions.MaxLargeMessageLength"/>; nothing was written.</exception>
    /// <exception cref="IOException">The message is longer than <see cref="MaxMessageLength"/> and the shared memory for it cannot be allocated; nothing was written.</exception>
    public bool TryEnqueue(ReadOnlySpan<byte> message)
    {
        if (message.Length > _ring.MaxMessageLength)
        {
            return EnqueueLarge(message, WaitSignal.DeadlineFrom(TimeSpan.Zero), CancellationToken.None);
        }

        ThreadCallSlot? call = EnterCall(ref _recentWriteSlot, reads: false);
        try
        {
            return TryEnqueueCore(message);
        }
        finally
        {
            ExitCall(call);
        }
    }

    /// <summary>Appends a message, waiting up to <paramref name="timeout"/> for space. False when the time ran out.</summary>
    public bool TryEnqueue(ReadOnlySpan<byte> message, TimeSpan timeout) =>
        EnqueueWaiting(message, WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>Appends a message, waiting while the queue is full.</summary>
    public void Enqueue(ReadOnlySpan<byte> message) => Enqueue(message, CancellationToken.None);

    /// <summary>Appends a message, waiting while the queue is full, until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <exception cref="OperationCanceledException">Cancelled; nothing was written.</exception>
    public void Enqueue(ReadOnlySpan<byte> message, CancellationToken cancellationToken) =>
        EnqueueWaiting(message, long.MaxValue, cancellationToken);

    /// <summary>Appends a message, waiting up to <paramref name="timeout"/> for space.</summary>
    /// <exception cref="TimeoutException">No space within the timeout; nothing was written.</exception>
    public void Enqueue(ReadOnlySpan<byte> message, TimeSpan timeout)
    {
        if (!TryEnqueue(message, timeout))
        {
            throw new TimeoutException($"Queue '{Name}' stayed full for {timeout}.");
        }
    }

    // ---- Dequeue ----------------------------------------------------------------------------------

    /// <summary>Takes the next message without waiting. False when the queue is empty.</summary>
    public bool TryDequeue([NotNullWhen(true)] out byte[]? message)
    {
        var reader = new ArrayReader();
        bool got = TryReadNoWait<ArrayReader, byte[]>(ref reader, out byte[]? result);
        message = result;
        return got;
    }

    /// <summary>Takes the next message, waiting up to <paramref name="timeout"/>. False when the time ran out.</summary>
    public bool TryDequeue([NotNullWhen(true)] out byte[]? message, TimeSpan timeout)
    {
        Deadline.CheckTimeout(timeout);
        var reader = new ArrayReader();
        bool got = TryReadWaiting<ArrayReader, byte[]>(ref reader, Deadline.Deferred, CancellationToken.None, out byte[]? result, timeout);
        message = result;
        return got;
    }

    /// <summary>Takes the next message, waiting while the queue is empty.</summary>
    public byte[] Dequeue() => Dequeue(CancellationToken.None);

    /// <summary>Takes the next message, waiting while the queue is empty, until <paramref name="cancellationToken"/> is cancelled.</summary>
    public byte[] Dequeue(CancellationToken cancellationToken)
    {
        var reader = new ArrayReader();
        TryReadWaiting<ArrayReader, byte[]>(ref reader, long.MaxValue, cancellationToken, out byte[]? message);
        return message!;
    }

    /// <summary>Takes the next message, waiting up to <paramref name="timeout"/>.</summary>
    /// <exception cref="TimeoutException">No message within the timeout.</exception>
    public byte[] Dequeue(TimeSpan timeout) =>
        TryDequeue(out byte[]? message, timeout) ? message : ThrowEmptyTimeout<byte[]>(timeout);

    /// <summary>Copies the next message into <paramref name="destination"/> without waiting or allocating.</summary>
    /// <exception cref="ArgumentException">The next message is longer than <paramref name="destination"/>; it stays in the queue.</exception>
    public bool TryDequeue(Span<byte> destination, out int bytesWritten)
    {
        fixed (byte* pointer = destination)
        {
            var reader = new SpanReader(pointer, destination.Length);
            return TryReadNoWait<SpanReader, int>(ref reader, out bytesWritten);
        }
    }

    /// <summary>Copies the next message into <paramref name="destination"/>, waiting up to <paramref name="timeout"/>. False when the time ran out.</summary>
    /// <returns>True with the message's length in <paramref name="bytesWritten"/>; false (and 0) when no message came within the timeout.</returns>
    /// <exception cref="ArgumentException">The next message is longer than <paramref name="destination"/>; it stays in the queue.</exception>
    /// <exception cref="ShmQueueShutDownException">The queue is shut down and drained.</exception>
    /// <exception cref="ObjectDisposedException">This queue object was disposed (also by another thread during the wait).</exception>
    public bool TryDequeue(Span<byte> destination, out int bytesWritten, TimeSpan timeout) =>
        TryDequeueInto(destination, timeout, CancellationToken.None, out bytesWritten);

    /// <summary>Copies the next message into <paramref name="destination"/>, waiting while the queue is empty. Returns its length.</summary>
    /// <inheritdoc cref="TryDequeue(Span{byte}, out int, TimeSpan)" path="/exception"/>
    public int Dequeue(Span<byte> destination) => Dequeue(destination, CancellationToken.None);

    /// <summary>
    /// Copies the next message into <paramref name="destination"/>, waiting while the queue is empty, until
    /// <paramref name="cancellationToken"/> is cancelled. Returns its length.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before a message came; nothing was taken.</exception>
    /// <inheritdoc cref="TryDequeue(Span{byte}, out int, TimeSpan)" path="/exception"/>
    public int Dequeue(Span<byte> destination, CancellationToken cancellationToken)
    {
        TryDequeueInto(destination, long.MaxValue, cancellationToken, out int written);
        return written;
    }

    /// <summary>Copies the next message into <paramref name="destination"/>, waiting up to <paramref name="timeout"/>. Returns its length.</summary>
    /// <exception cref="TimeoutException">No message within the timeout; nothing was taken.</exception>
    /// <inheritdoc cref="TryDequeue(Span{byte}, out int, TimeSpan)" path="/exception"/>
    public int Dequeue(Span<byte> destination, TimeSpan timeout) =>
        TryDequeueInto(destination, timeout, CancellationToken.None, out int written) ? written : ThrowEmptyTimeout<int>(timeout);

    /// <summary>
    /// Copies the next message into <paramref name="destination"/>, waiting up to <paramref name="timeout"/>. Returns its
    /// length, or -1 on timeout. Replaced by <see cref="TryDequeue(Span{byte}, out int, TimeSpan)"/> (a <c>bool</c> on timeout)
    /// and <see cref="Dequeue(Span{byte}, TimeSpan)"/> (a <see cref="TimeoutException"/>), as every other blocking call.
    /// </summary>
    /// <exception cref="ArgumentException">The next message is longer than <paramref name="destination"/>; it stays in the queue.</exception>
    [Obsolete("Use TryDequeue(Span<byte>, out int, TimeSpan) (false on timeout) or Dequeue(Span<byte>, TimeSpan) (throws TimeoutException); cancellation: Dequeue(Span<byte>, CancellationToken).")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public int Dequeue(Span<byte> destination, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        TryDequeueInto(destination, timeout, cancellationToken, out int written) ? written : -1;

    private bool TryDequeueInto(Span<byte> destination, long deadline, CancellationToken cancellationToken, out int bytesWritten, TimeSpan timeout = default)
    {
        fixed (byte* pointer = destination)
        {
            var reader = new SpanReader(pointer, destination.Length);
            return TryReadWaiting<SpanReader, int>(ref reader, deadline, cancellationToken, out bytesWritten, timeout);
        }
    }

    /// <summary>As above, the deadline computed only if the call has to wait (<see cref="Deadline.Deferred"/>).</summary>
    private bool TryDequeueInto(Span<byte> destination, TimeSpan timeout, CancellationToken cancellationToken, out int bytesWritten)
    {
        Deadline.CheckTimeout(timeout);
        return TryDequeueInto(destination, Deadline.Deferred, cancellationToken, out bytesWritten, timeout);
    }

    /// <summary>Appends the next message to <paramref name="destination"/> without waiting. False when the queue is empty.</summary>
    public bool TryDequeue(IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var reader = new BufferWriterReader(destination);
        return TryReadNoWait<BufferWriterReader, int>(ref reader, out _);
    }

    /// <summary>
    /// Hands the next message to <paramref name="reader"/> in place (no copy), without waiting; its space is
    /// released after the reader returns. False when the queue is empty. The message is consumed even if
    /// the reader throws (the exception propagates): it is never delivered twice. The span the reader gets is valid
    /// only until it returns (see <see cref="ShmMessageReader{TState, TResult}"/>).
    /// </summary>
    public bool TryDequeue<TState, TResult>(ShmMessageReader<TState, TResult> reader, TState state, [MaybeNullWhen(false)] out TResult result)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var callback = new DelegateReader<TState, TResult>(reader, state);
        return TryReadNoWait<DelegateReader<TState, TResult>, TResult>(ref callback, out result);
    }

    /// <summary>
    /// Hands the next message to <paramref name="reader"/> in place, waiting up to <paramref name="timeout"/>. False when the
    /// time ran out. The span the reader gets is valid only until it returns.
    /// </summary>
    public bool TryDequeue<TState, TResult>(ShmMessageReader<TState, TResult> reader, TState state, TimeSpan timeout,
        [MaybeNullWhen(false)] out TResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        Deadline.CheckTimeout(timeout);
        var callback = new DelegateReader<TState, TResult>(reader, state);
        return TryReadWaiting<DelegateReader<TState, TResult>, TResult>(ref callback, Deadline.Deferred, cancellationToken, out result, timeout);
    }

    // ---- Lifetime -----------------------------------------------------------------------------------

    /// <summary>Removes the queue's name (and its semaphores' names) from the system; processes that have it open keep using it.</summary>
    public void Unlink()
    {
        Enter();
        try
        {
            _segment.Unlink();
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Closes this process's handle. Other threads waiting on it get <see cref="ObjectDisposedException"/>.
    /// The creator also unlinks the queue unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.
    /// </summary>
    public void Dispose()
    {
        if (!_lifetime.TryStop(EndpointLifetime.Closed))
        {
            return;
        }

        ShmMetrics.Untrack(this);
        StopAsyncPump();
        _deadLetters?.Dispose();

        // Wake our own sleepers so they see the stop; then wait for every call in flight to leave before unmapping
        // (a thread still inside would fault on unmapped memory). The process-wide barrier makes every call that entered
        // through its thread's slot visible to the scan, or lets it see the stop (ThreadCallSlot's Design remarks).
        Interlocked.MemoryBarrierProcessWide();
        if (!EndpointLifetime.WaitUntilIdle(() => _lifetime.Calls > 0 || ThreadCallSlot.IsAnyInside(_callId), () =>
            {
                _dataSemaphore.Post();
                _spaceSemaphore.Post();
            }))
        {
            _logger.LogError("Queue {Name}: calls still in flight after {Timeout}; the mapping is left in place.", Name, EndpointLifetime.DrainTimeout);
            return;
        }

        if (_unlinkOnDispose)
        {
            _segment.Unlink();
        }

        _sides.Dispose();
        _dataSemaphore.Dispose();
        _spaceSemaphore.Dispose();
        _segment.Dispose();
    }

    /// <summary>Disposes, waiting for outstanding async operations to end.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckLength(int length)
    {
        if (length > _ring.MaxMessageLength)
        {
            CheckLargeLength(length);
        }
    }

    [DoesNotReturn]
    private T ThrowEmptyTimeout<T>(TimeSpan timeout) => throw new TimeoutException($"Queue '{Name}' stayed empty for {timeout}.");

    [DoesNotReturn]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(ShmQueue), $"Queue '{Name}' has been disposed.");


    [DoesNotReturn]
    private void ThrowTooLarge(int length, int room, string paramName) =>
        throw new ArgumentException($"The next message of queue '{Name}' has {length} bytes; the destination holds {room}. The message was left in the queue.", paramName);
}
