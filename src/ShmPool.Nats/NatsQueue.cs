using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using ShmIpc.Nats.Internal;

namespace ShmIpc.Nats;

/// <summary>Options of a <see cref="NatsQueue"/>.</summary>
public sealed record class NatsQueueOptions
{
    /// <summary>The NATS server (<c>nats://host:4222</c>), or several of one cluster separated by commas. Required; JetStream must be on.</summary>
    public string Url { get; init; } = "";

    /// <summary>The queue's name: every <see cref="NatsQueue"/> of this name on this server is the same queue. Letters, digits, '-' and '_'.</summary>
    public string Name { get; init; } = "";

    /// <summary>A message taken (<see cref="NatsQueue.Take"/>) and neither acknowledged nor refused within this time is given out again. Default 30 s.</summary>
    public TimeSpan AckTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A message given out this many times without an acknowledgement goes to the dead letters (<see cref="NatsQueue.TryTakeDeadLetter"/>). Default 5.</summary>
    public int MaxDeliveries { get; init; } = 5;

    /// <summary>How long the constructor tries to reach the server. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// The <see cref="IShmQueue"/> across hosts: a durable NATS JetStream work-queue stream (file-backed). Each message goes
/// to one reader. <see cref="Dequeue(TimeSpan)"/> removes a message at once; <see cref="Take"/> gives an acknowledged
/// delivery: unacknowledged (the reader died, or <see cref="NatsDelivery.Nack"/>) it is given out again, and after
/// <see cref="NatsQueueOptions.MaxDeliveries"/> deliveries it moves to the dead letters.
/// </summary>
/// <remarks>
/// Stream <c>SHMQ_{name}</c>, subjects <c>shmq.{name}.m</c> (messages, consumer "readers") and <c>shmq.{name}.dead</c>
/// (dead letters, consumer "dead"); the server keeps both until they are taken.
/// </remarks>
public sealed class NatsQueue : IShmQueue
{
    private readonly NatsQueueOptions _options;
    private readonly NatsConnection _connection;
    private readonly NatsJSContext _js;
    private readonly string _subject;
    private readonly string _deadSubject;
    private readonly INatsJSConsumer _readers;
    private readonly INatsJSConsumer _dead;

    /// <summary>Opens (creating if needed) the queue <see cref="NatsQueueOptions.Name"/> on the server.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="IOException">The server cannot be reached, or has no JetStream.</exception>
    public NatsQueue(NatsQueueOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Url, nameof(options));
        PoolSubjects.Validate(options.Name, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxDeliveries, 1, nameof(options));
        _options = options;
        _subject = $"shmq.{options.Name}.m";
        _deadSubject = $"shmq.{options.Name}.dead";
        _connection = NatsConnect.ConnectAsync(options.Url, $"NATS queue '{options.Name}'", options.ConnectTimeout, CancellationToken.None).GetAwaiter().GetResult();
        _js = new NatsJSContext(_connection);
        try
        {
            (_readers, _dead) = SetUpAsync().WaitAsync(options.ConnectTimeout + TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            _connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
            throw e is NatsJSException or TimeoutException
                ? new IOException($"NATS queue '{options.Name}': the server at {options.Url} cannot set up the queue: {e.Message} (is JetStream on: nats-server -js?)", e)
                : e;
        }
    }

    /// <inheritdoc/>
    public string Name => _options.Name;

    private string Stream => "SHMQ_" + _options.Name;

    private async Task<(INatsJSConsumer, INatsJSConsumer)> SetUpAsync()
    {
        await _js.CreateOrUpdateStreamAsync(new StreamConfig(Stream, [_subject, _deadSubject])
        {
            Retention = StreamConfigRetention.Workqueue,
            Storage = StreamConfigStorage.File,
        }).ConfigureAwait(false);
        INatsJSConsumer readers = await _js.CreateOrUpdateConsumerAsync(Stream, new ConsumerConfig("readers")
        {
            FilterSubject = _subject,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _options.AckTimeout,
        }).ConfigureAwait(false);
        INatsJSConsumer dead = await _js.CreateOrUpdateConsumerAsync(Stream, new ConsumerConfig("dead")
        {
            FilterSubject = _deadSubject,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
        }).ConfigureAwait(false);
        return (readers, dead);
    }

    /// <inheritdoc/>
    public void Enqueue(ReadOnlySpan<byte> message, TimeSpan timeout)
    {
        if (!TryEnqueue(message, timeout))
        {
            throw new TimeoutException($"NATS queue '{Name}': the server at {_options.Url} did not store the message within {timeout}.");
        }
    }

    /// <inheritdoc/>
    public void Enqueue(ReadOnlySpan<byte> message, CancellationToken cancellationToken) =>
        EnqueueAsync(message.ToArray(), cancellationToken).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public bool TryEnqueue(ReadOnlySpan<byte> message, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            EnqueueAsync(message.ToArray(), cts.Token).AsTask().GetAwaiter().GetResult();
            return true;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public async ValueTask EnqueueAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        var headers = new NatsHeaders { [PoolHeaders.MsgId] = Guid.NewGuid().ToString("N") };
        PubAckResponse ack = await NatsConnect.RetryAsync(ct => _js.PublishAsync(_subject, message, headers: headers, cancellationToken: ct).AsTask(), cancellationToken).ConfigureAwait(false);
        NatsConnect.EnsureStored(ack);
    }

    /// <inheritdoc/>
    public byte[] Dequeue(TimeSpan timeout) =>
        TryDequeue(out byte[]? message, timeout) ? message : throw new TimeoutException($"NATS queue '{Name}' at {_options.Url}: no message within {timeout}.");

    /// <inheritdoc/>
    public byte[] Dequeue(CancellationToken cancellationToken) => DequeueAsync(cancellationToken).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public bool TryDequeue([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? message, TimeSpan timeout)
    {
        if (TryTake(out NatsDelivery? delivery, timeout))
        {
            message = delivery.ToArray();
            delivery.Ack();
            return true;
        }

        message = null;
        return false;
    }

    /// <inheritdoc/>
    public async ValueTask<byte[]> DequeueAsync(CancellationToken cancellationToken = default)
    {
        NatsDelivery delivery = await TakeAsync(cancellationToken).ConfigureAwait(false);
        byte[] message = delivery.ToArray();
        await delivery.AckAsync(cancellationToken).ConfigureAwait(false);
        return message;
    }

    /// <summary>Takes the oldest message as an acknowledged delivery, waiting up to <paramref name="timeout"/>: <see cref="NatsDelivery.Ack"/> removes it, <see cref="NatsDelivery.Nack"/> gives it out again.</summary>
    /// <exception cref="TimeoutException">No message within <paramref name="timeout"/>.</exception>
    public NatsDelivery Take(TimeSpan timeout) =>
        TryTake(out NatsDelivery? delivery, timeout) ? delivery : throw new TimeoutException($"NATS queue '{Name}' at {_options.Url}: no message within {timeout}.");

    /// <summary>As <see cref="Take"/>; false if no message came within <paramref name="timeout"/>.</summary>
    public bool TryTake([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out NatsDelivery? delivery, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            delivery = TakeAsync(cts.Token).GetAwaiter().GetResult();
            return true;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            delivery = null;
            return false;
        }
    }

    /// <summary>As <see cref="Take"/>, without blocking a thread, until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task<NatsDelivery> TakeAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            INatsJSMsg<byte[]> message = await NextAsync(_readers, cancellationToken).ConfigureAwait(false);
            long deliveries = (long)(message.Metadata?.NumDelivered ?? 1);
            if (deliveries <= _options.MaxDeliveries)
            {
                return new NatsDelivery(message, deliveries);
            }

            // Given out MaxDeliveries times already: to the dead letters (stored first, then removed here).
            PubAckResponse ack = await NatsConnect.RetryAsync(ct => _js.PublishAsync(_deadSubject, message.Data ?? [], cancellationToken: ct).AsTask(), cancellationToken).ConfigureAwait(false);
            NatsConnect.EnsureStored(ack);
            await message.AckAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Removes the oldest dead letter (a message given out <see cref="NatsQueueOptions.MaxDeliveries"/> times and never acknowledged), if one comes within <paramref name="timeout"/>.</summary>
    public bool TryTakeDeadLetter([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? message, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            INatsJSMsg<byte[]> dead = NextAsync(_dead, cts.Token).GetAwaiter().GetResult();
            message = dead.Data ?? [];
            dead.AckAsync().AsTask().GetAwaiter().GetResult();
            return true;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            message = null;
            return false;
        }
    }

    private static async Task<INatsJSMsg<byte[]>> NextAsync(INatsJSConsumer consumer, CancellationToken cancellationToken)
    {
        var options = new NatsJSNextOpts { Expires = TimeSpan.FromSeconds(2) };
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (await consumer.NextAsync<byte[]>(opts: options, cancellationToken: cancellationToken).ConfigureAwait(false) is { } message)
                {
                    return message;
                }
            }
            catch (Exception e) when (NatsConnect.IsTransient(e) && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Closes the connection; the queue and its messages stay on the server.</summary>
    public void Dispose() => _connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));

    /// <summary>Closes the connection; the queue and its messages stay on the server.</summary>
    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}

/// <summary>
/// A message taken from a <see cref="NatsQueue"/> and not yet settled: <see cref="Ack"/> removes it from the queue,
/// <see cref="Nack"/> gives it out again at once; neither within the queue's ack timeout (the reader died) gives it out
/// again too.
/// </summary>
public sealed class NatsDelivery : IShmDelivery
{
    private readonly INatsJSMsg<byte[]> _message;
    private int _settled;

    internal NatsDelivery(INatsJSMsg<byte[]> message, long deliveryCount)
    {
        _message = message;
        DeliveryCount = (int)Math.Min(deliveryCount, int.MaxValue);
    }

    /// <summary>The message's bytes.</summary>
    public ReadOnlySpan<byte> Span => _message.Data;

    /// <summary>Which delivery of the message this is: 1 the first time, more after a Nack or a reader lost.</summary>
    public int DeliveryCount { get; }

    /// <summary>A copy of the message's bytes.</summary>
    public byte[] ToArray() => (_message.Data ?? []).ToArray();

    /// <summary>Done with it: the message leaves the queue.</summary>
    /// <exception cref="InvalidOperationException">The delivery was already acked or nacked.</exception>
    public void Ack() => AckAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>As <see cref="Ack"/>, without blocking a thread; confirmed by the server.</summary>
    /// <exception cref="InvalidOperationException">The delivery was already acked or nacked.</exception>
    public ValueTask AckAsync(CancellationToken cancellationToken = default)
    {
        Settle();
        return _message.AckAsync(new AckOpts { DoubleAck = true }, cancellationToken);
    }

    /// <summary>
    /// Not done: with <paramref name="requeue"/> the message is given out again at once (to this or another reader);
    /// without, the server terminates it (JetStream's AckTerm: never delivered again).
    /// </summary>
    /// <exception cref="InvalidOperationException">The delivery was already acked or nacked.</exception>
    public void Nack(bool requeue = true)
    {
        Settle();
        if (requeue)
        {
            _message.NakAsync().AsTask().GetAwaiter().GetResult();
        }
        else
        {
            _message.AckTerminateAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Nacks the delivery (given out again) unless it was acked or nacked; a second call does nothing.</summary>
    public void Dispose()
    {
        if (Volatile.Read(ref _settled) == 0)
        {
            Nack();
        }
    }

    private void Settle()
    {
        if (Interlocked.Exchange(ref _settled, 1) != 0)
        {
            throw new InvalidOperationException("This delivery was already acked or nacked.");
        }
    }
}

/// <summary>The typed <see cref="IShmQueue{T}"/> over a <see cref="NatsQueue"/>, with the pool's serializer.</summary>
/// <typeparam name="T">The message type.</typeparam>
public sealed class NatsQueue<T> : IShmQueue<T>
{
    private readonly IShmObjectSerializer _serializer;

    /// <summary>Opens the queue of <paramref name="options"/>; values cross with <paramref name="serializer"/> (default: <see cref="ShmMessagePackSerializer"/>).</summary>
    /// <exception cref="IOException">The server cannot be reached, or has no JetStream.</exception>
    public NatsQueue(NatsQueueOptions options, IShmObjectSerializer? serializer = null)
    {
        Queue = new NatsQueue(options);
        _serializer = serializer ?? ShmMessagePackSerializer.Instance;
    }

    /// <summary>The byte queue underneath.</summary>
    public NatsQueue Queue { get; }

    /// <inheritdoc/>
    public string Name => Queue.Name;

    private byte[] Serialize(T value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        _serializer.Serialize(typeof(T), value, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private T Deserialize(byte[] bytes) => (T)_serializer.Deserialize(typeof(T), bytes)!;

    /// <inheritdoc/>
    public void Enqueue(T value, TimeSpan timeout) => Queue.Enqueue(Serialize(value), timeout);

    /// <inheritdoc/>
    public void Enqueue(T value, CancellationToken cancellationToken = default) => Queue.Enqueue(Serialize(value), cancellationToken);

    /// <inheritdoc/>
    public bool TryEnqueue(T value, TimeSpan timeout) => Queue.TryEnqueue(Serialize(value), timeout);

    /// <inheritdoc/>
    public ValueTask EnqueueAsync(T value, CancellationToken cancellationToken = default) => Queue.EnqueueAsync(Serialize(value), cancellationToken);

    /// <inheritdoc/>
    public T Dequeue(TimeSpan timeout) => Deserialize(Queue.Dequeue(timeout));

    /// <inheritdoc/>
    public T Dequeue(CancellationToken cancellationToken = default) => Deserialize(Queue.Dequeue(cancellationToken));

    /// <inheritdoc/>
    public bool TryDequeue([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out T value, TimeSpan timeout)
    {
        if (Queue.TryDequeue(out byte[]? bytes, timeout))
        {
            value = Deserialize(bytes);
            return true;
        }

        value = default;
        return false;
    }

    /// <inheritdoc/>
    public async ValueTask<T> DequeueAsync(CancellationToken cancellationToken = default) =>
        Deserialize(await Queue.DequeueAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Closes the connection; the queue stays on the server.</summary>
    public void Dispose() => Queue.Dispose();

    /// <summary>Closes the connection; the queue stays on the server.</summary>
    public ValueTask DisposeAsync() => Queue.DisposeAsync();
}
