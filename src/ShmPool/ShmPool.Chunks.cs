using ShmIpc.Hosting;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

// Functions and chunks: a delegate registered once per pool, items encoded into Chunk messages.
public sealed partial class ShmPool
{
    private PoolFunction Register(Delegate function) => Register(function, static method => ResolvedTarget.WireArgumentTypeOrNull(method));

    /// <summary>Registers <paramref name="function"/>, whose argument type (as chunks carry it) <paramref name="argumentTypeOf"/> tells.</summary>
    private PoolFunction Register(Delegate function, Func<System.Reflection.MethodInfo, Type?> argumentTypeOf)
    {
        // Seen before: a lookup by the method, no reflection (TargetMethod.From costs about 0.4 µs). Only
        // single-target delegates that passed From's checks are cached, and a method passes them or not
        // whatever delegate carries it; a multicast one goes the long way and is refused there.
        ArgumentNullException.ThrowIfNull(function);

        // The same delegate as last time (a static lambda or method group is one cached instance): no lookup at all.
        if (_lastRegistered is { } last && ReferenceEquals(last.Delegate, function))
        {
            return last.Function;
        }

        if (function.HasSingleTarget && _functionsByMethod.TryGetValue(function.Method, out PoolFunction? known))
        {
            _lastRegistered = new RegisteredDelegate(function, known);
            return known;
        }

        TargetMethod target = TargetMethod.From(function, nameof(function));
        lock (_lock)
        {
            if (!_functions.TryGetValue(target, out PoolFunction? f))
            {
                Type argumentType = argumentTypeOf(function.Method)
                    ?? throw new ArgumentException("A pool function takes one to three arguments.", nameof(function));
                f = new PoolFunction(_functions.Count + 1, target, argumentType, function.Method.ReturnType, function.Method.GetParameters().Length);
                _functions.Add(target, f);
            }

            _functionsByMethod.TryAdd(function.Method, f);
            return f;
        }
    }

    /// <summary>A delegate that passed <see cref="Register(Delegate)"/> and its function (one object: read and written whole, without a lock).</summary>
    private sealed record RegisteredDelegate(Delegate Delegate, PoolFunction Function);

    /// <summary>The last delegate <see cref="Register(Delegate)"/> resolved through its caches (a Map or Apply loop passes the same one again).</summary>
    private RegisteredDelegate? _lastRegistered;

    /// <summary>The name of a pool task's span, in the caller and in the worker.</summary>
    internal const string TaskActivityName = "shmipc.pool.task";

    private PoolChunk<TResult> MakeChunk<TArg, TResult>(PoolFunction f, ReadOnlySpan<TArg> items, TaskCompletionSource<TResult>? single = null,
        TResult[]? target = null, int targetOffset = 0)
    {
        PoolChunk<TResult> chunk = NewChunk(f, items.Length, single, target, targetOffset);
        Encode(chunk, items);
        return chunk;
    }

    /// <summary>A chunk of <paramref name="count"/> items, its message not encoded yet (see <see cref="Encode"/>): not to be queued before that.</summary>
    private PoolChunk<TResult> NewChunk<TResult>(PoolFunction f, int count, TaskCompletionSource<TResult>? single = null, TResult[]? target = null, int targetOffset = 0)
    {
        long id = Interlocked.Increment(ref _nextChunkId);
        var chunk = new PoolChunk<TResult>(id, f, default, count) { Single = single, Target = target, TargetOffset = targetOffset };
        chunk.BeginTelemetry(TaskActivityName);
        return chunk;
    }

    /// <summary>Encodes <paramref name="items"/> (as many as the chunk counts) into <paramref name="chunk"/>'s message.</summary>
    private void Encode<TArg, TResult>(PoolChunk<TResult> chunk, ReadOnlySpan<TArg> items)
    {
        long id = chunk.Id;
        PoolFunction f = chunk.Function;
        bool block = IsBlockChunk<TArg, TResult>(f, out bool rawArguments);
        int blockLength = block ? BlockChunkHeaderLength + RawValues.AsBytes(items).Length : 0;

        // A block chunk's length is known before it is written: a large one is encoded straight into its rented array,
        // one copy of the items. (Through a growing writer it was a large-object allocation of the whole chunk and two
        // copies: for a Map of 1M ints on Pool(8), 32 allocations of 125 KB and 8 MB copied, most of the Map's time.)
        // Otherwise, this thread's writer: the message is copied out below, so one buffer serves every chunk it makes;
        // taken while in use (a serializer that submits to a pool on this thread gets a fresh one).
        byte[]? direct = blockLength >= RentedMessageThreshold ? System.Buffers.ArrayPool<byte>.Shared.Rent(blockLength) : null;
        MessageWriter writer = direct is not null ? new MessageWriter(direct) : t_chunkWriter ?? new MessageWriter();
        if (direct is null)
        {
            t_chunkWriter = null;
        }

        EncodeChunk(writer, id, f, items, block, rawArguments);
        int length = writer.Length;
        byte[]? rented;
        ReadOnlyMemory<byte> message;
        if (direct is not null && ReferenceEquals(writer.Buffer, direct))
        {
            rented = direct;
            message = direct.AsMemory(0, length);
        }
        else
        {
            if (direct is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(direct);
            }

            // Large messages (a Map's chunks) go into pooled arrays, given back when the chunk is settled: a Map of 1M
            // ints made 4 MB of large-object garbage in chunk messages alone, a gen2 collection per Map or two.
            rented = length >= RentedMessageThreshold ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : null;
            message = rented is null ? writer.Written.ToArray() : rented.AsMemory(0, length);
            if (rented is not null)
            {
                writer.Written.CopyTo(rented);
            }

            if (direct is null && writer.Capacity <= ReusedWriterLimit)
            {
                t_chunkWriter = writer;
            }
        }

        chunk.SetMessage(message, rented);
    }

    /// <summary>
    /// Whether a chunk of <typeparamref name="TArg"/> items for <paramref name="f"/> goes as a RawChunk (unmanaged in and out
    /// of a one-argument function: the items as one block, and the results too); <paramref name="rawArguments"/>: its items
    /// are written raw (unmanaged, of the function's argument type) even when it is not a block.
    /// </summary>
    private bool IsBlockChunk<TArg, TResult>(PoolFunction f, out bool rawArguments)
    {
        rawArguments = RawValues.Applies<TArg>(_serializer) && f.ArgumentType == typeof(TArg);
        return rawArguments && f.ParameterCount == 1 && f.ResultType == typeof(TResult) && RawValues.Applies<TResult>(_serializer);
    }

    /// <summary>The bytes of a RawChunk before its items: kind, chunk id, function id, count, the block's length.</summary>
    private const int BlockChunkHeaderLength = 1 + sizeof(long) + sizeof(int) + sizeof(int) + sizeof(int);

    /// <summary>Encodes the Chunk (or RawChunk) message of <paramref name="items"/> into <paramref name="writer"/>.</summary>
    private void EncodeChunk<TArg, TResult>(MessageWriter writer, long id, PoolFunction f, ReadOnlySpan<TArg> items) =>
        EncodeChunk(writer, id, f, items, IsBlockChunk<TArg, TResult>(f, out bool rawArguments), rawArguments);

    /// <summary>Encodes the Chunk (or RawChunk, when <paramref name="block"/>) message of <paramref name="items"/> into <paramref name="writer"/>.</summary>
    private void EncodeChunk<TArg>(MessageWriter writer, long id, PoolFunction f, ReadOnlySpan<TArg> items, bool block, bool rawArguments)
    {
        writer.Reset(block ? MessageKind.RawChunk : MessageKind.Chunk).WriteInt64(id);
        writer.WriteInt32(f.Id);
        writer.WriteInt32(items.Length);
        if (block)
        {
            writer.WriteBytes(RawValues.AsBytes(items));
        }
        else if (rawArguments)
        {
            foreach (TArg item in items)
            {
                RawValues.Write(writer, item);
            }
        }
        else
        {
            foreach (TArg item in items)
            {
                writer.WriteLengthPrefixed((_serializer, f.ArgumentType, (object?)item), static (s, w) => s._serializer.Serialize(s.ArgumentType, s.Item3, w));
            }
        }
    }

    /// <summary>The writer MakeChunk encodes chunks with on this thread (they are copied out, so it is reused).</summary>
    [ThreadStatic]
    private static MessageWriter? t_chunkWriter;

    /// <summary>A reused writer that grew past this (a huge Map chunk) is dropped rather than kept for the thread's life.</summary>
    private const int ReusedWriterLimit = 64 << 10;

    /// <summary>Chunk messages of this size and more are copied into arrays rented from the shared pool.</summary>
    private const int RentedMessageThreshold = 16 << 10;
}
