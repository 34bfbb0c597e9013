using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ShmIpc.Async;

namespace ShmIpc;

/// <summary>
/// A <see cref="ShmQueue"/> of typed values, turned into bytes by an <see cref="IShmSerializer{T}"/>
/// (built in: unmanaged structs as their bytes, <see cref="string"/> as UTF-8, <c>byte[]</c>).
/// Values are deserialized straight from shared memory, without an intermediate copy.
/// </summary>
/// <typeparam name="T">The type of the values carried.</typeparam>
public sealed partial class ShmQueue<T> : IDisposable, IAsyncDisposable, IShmWaitable
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    private static readonly ShmMessageReader<IShmSerializer<T>, T> s_read = static (bytes, serializer) => serializer.Deserialize(bytes);

    private readonly IShmSerializer<T> _serializer;
    private ChannelReader<T>? _reader;
    private ChannelWriter<T>? _writer;

    /// <summary>Wraps an open queue; the typed queue owns it from now on.</summary>
    public ShmQueue(ShmQueue queue, IShmSerializer<T>? serializer = null)
    {
        ArgumentNullException.ThrowIfNull(queue);
        Queue = queue;
        _serializer = ShmSerializers.Resolve(serializer, nameof(serializer));
    }

    /// <summary>The byte queue underneath.</summary>
    public ShmQueue Queue { get; }

    /// <summary>The queue's name.</summary>
    public string Name => Queue.Name;

    /// <summary>The number of values waiting (a snapshot).</summary>
    public int Count => Queue.Count;

    /// <summary>Creates a typed queue.</summary>
    public static ShmQueue<T> Create(string name, ShmQueueOptions? options = null, IShmSerializer<T>? serializer = null) =>
        Wrap(ShmQueue.Create(name, options), serializer);

    /// <summary>Opens a typed queue.</summary>
    public static ShmQueue<T> Open(string name, ShmQueueOptions? options = null, IShmSerializer<T>? serializer = null) =>
        Wrap(ShmQueue.Open(name, options), serializer);

    /// <summary>Opens the queue if it exists, else creates it.</summary>
    public static ShmQueue<T> OpenOrCreate(string name, ShmQueueOptions? options = null, IShmSerializer<T>? serializer = null) =>
        Wrap(ShmQueue.OpenOrCreate(name, options), serializer);

    private static ShmQueue<T> Wrap(ShmQueue queue, IShmSerializer<T>? serializer)
    {
        try
        {
            return new ShmQueue<T>(queue, serializer);
        }
        catch
        {
            queue.Dispose();
            throw;
        }
    }

    /// <summary>Appends a value, waiting while the queue is full.</summary>
    public void Enqueue(T value, CancellationToken cancellationToken = default) => Queue.Enqueue(Serialize(value), cancellationToken);

    /// <summary>Appends a value, waiting up to <paramref name="timeout"/> for space.</summary>
    /// <exception cref="TimeoutException">No space within the timeout; nothing was written.</exception>
    public void Enqueue(T value, TimeSpan timeout) => Queue.Enqueue(Serialize(value), timeout);

    /// <summary>Appends a value without waiting; false when the queue is full.</summary>
    public bool TryEnqueue(T value) => Queue.TryEnqueue(Serialize(value));

    /// <summary>Appends a value, waiting up to <paramref name="timeout"/>; false when the time ran out.</summary>
    public bool TryEnqueue(T value, TimeSpan timeout) => Queue.TryEnqueue(Serialize(value), timeout);

    /// <summary>Takes the next value, waiting while the queue is empty.</summary>
    public T Dequeue(CancellationToken cancellationToken = default)
    {
        Queue.TryDequeue(s_read, _serializer, Timeout.InfiniteTimeSpan, out T? value, cancellationToken);
        return value!;
    }

    /// <summary>Takes the next value, waiting up to <paramref name="timeout"/>.</summary>
    /// <exception cref="TimeoutException">No value within the timeout.</exception>
    public T Dequeue(TimeSpan timeout) =>
        TryDequeue(out T? value, timeout) ? value : throw new TimeoutException($"Queue '{Name}' stayed empty for {timeout}.");

    /// <summary>Takes the next value without waiting; false when the queue is empty.</summary>
    public bool TryDequeue([MaybeNullWhen(false)] out T value) => Queue.TryDequeue(s_read, _serializer, out value);

    /// <summary>Takes the next value, waiting up to <paramref name="timeout"/>; false when the time ran out.</summary>
    public bool TryDequeue([MaybeNullWhen(false)] out T value, TimeSpan timeout) => Queue.TryDequeue(s_read, _serializer, timeout, out value);

    /// <summary>Appends a value asynchronously.</summary>
    public ValueTask EnqueueAsync(T value, CancellationToken cancellationToken = default) =>
        Queue.EnqueueAsync(Serialize(value).ToArray(), cancellationToken);

    /// <summary>Takes the next value asynchronously.</summary>
    public async ValueTask<T> DequeueAsync(CancellationToken cancellationToken = default) =>
        _serializer.Deserialize(await Queue.DequeueAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Values as they arrive, until cancelled or disposed, or until the queue is shut down and drained.</summary>
    public async IAsyncEnumerable<T> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (byte[] message in Queue.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return _serializer.Deserialize(message);
        }
    }

    /// <summary>
    /// The queue's consuming side as a <see cref="ChannelReader{T}"/>, as a Channel's <c>Reader</c>: plug the queue into
    /// code written for System.Threading.Channels. <see cref="ChannelReader{T}.WaitToReadAsync"/> waits on the process's
    /// async waiter threads (no spinning, no thread per call) and returns false once the queue is shut down and drained;
    /// <see cref="ChannelReader{T}.TryRead"/> never blocks; <see cref="ChannelReader{T}.Completion"/> completes when the
    /// reader sees the shutdown.
    /// </summary>
    public ChannelReader<T> Reader => _reader ??= new ShmChannelReader<T>(new QueueChannelEndpoint(Queue), _serializer);

    /// <summary>
    /// The queue's producing side as a <see cref="ChannelWriter{T}"/>, as a Channel's <c>Writer</c>:
    /// <see cref="ChannelWriter{T}.TryWrite"/> never blocks (false when full or shut down),
    /// <see cref="ChannelWriter{T}.WaitToWriteAsync"/> waits for space and returns false once the queue is shut down, and
    /// <see cref="ChannelWriter{T}.TryComplete"/> shuts the queue down (readers drain what is in it).
    /// </summary>
    public ChannelWriter<T> Writer => _writer ??= new ShmChannelWriter<T>(new QueueChannelEndpoint(Queue), _serializer);

    /// <summary>True once any process has shut the queue down (<see cref="ShmQueue.IsShutDown"/>).</summary>
    public bool IsShutDown => Queue.IsShutDown;

    /// <summary>
    /// Shuts the queue down in every process: enqueues throw <see cref="ShmQueueShutDownException"/>, dequeues
    /// return what is left and then throw it (at once when <paramref name="immediate"/>). See <see cref="ShmQueue.Shutdown"/>.
    /// </summary>
    public void Shutdown(bool immediate = false) => Queue.Shutdown(immediate);

    void IShmWaitable.BeginWait() => ((IShmWaitable)Queue).BeginWait();

    bool IShmWaitable.PollReady() => ((IShmWaitable)Queue).PollReady();

    void IShmWaitable.EndWait() => ((IShmWaitable)Queue).EndWait();

    /// <summary>Disposes the queue underneath.</summary>
    public void Dispose() => Queue.Dispose();

    /// <summary>Disposes the queue underneath.</summary>
    public ValueTask DisposeAsync() => Queue.DisposeAsync();

    private ReadOnlySpan<byte> Serialize(T value)
    {
        ArrayBufferWriter<byte> buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        _serializer.Serialize(value, buffer);
        return buffer.WrittenSpan;
    }
}
