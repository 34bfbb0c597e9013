using System.Buffers;
using ShmIpc.Hosting;
using ShmIpc.Protocol;

namespace ShmIpc.Nats.Internal;

/// <summary>
/// The bodies of task and result messages, written with the shared-memory pool's <see cref="MessageWriter"/>, so a
/// target and an error cross exactly as they do to a local worker.
/// </summary>
/// <remarks>
/// <code>
/// task    Chunk kind, serializer type name, target, item count n, [TArg[n] as the serializer writes an array]
/// result  Results kind, outcome: 0, [TResult[n] as an array], error count, error count x (index, error)
///                                1, error      (the whole chunk failed: target not found, arguments unreadable, ...)
/// </code>
/// Items cross as one array per chunk rather than one value each: one serializer call per chunk, not per item.
/// </remarks>
internal static class TaskWire
{
    public static byte[] WriteTask<TArg>(string serializerName, IShmObjectSerializer serializer, TargetMethod target, ArraySegment<TArg> items)
    {
        var writer = new MessageWriter();
        writer.Reset(MessageKind.Chunk);
        writer.WriteString(serializerName);
        writer.WriteTarget(target);
        writer.WriteInt32(items.Count);
        TArg[] array = items.Offset == 0 && items.Count == items.Array!.Length ? items.Array : items.ToArray();
        writer.WriteLengthPrefixed((serializer, array), static (s, w) => s.serializer.Serialize(typeof(TArg[]), s.array, w));
        return writer.WrittenMemory.ToArray();
    }

    public static (IShmObjectSerializer Serializer, TargetMethod Target, int Count, ReadOnlyMemory<byte> Items) ReadTask(ReadOnlyMemory<byte> body)
    {
        var reader = new MessageReader(body);
        MessageKind kind = reader.ReadKind();
        if (kind != MessageKind.Chunk)
        {
            throw new InvalidDataException($"A pool task message starts with kind {kind}, not Chunk: is another program publishing on the pool's task subject?");
        }

        IShmObjectSerializer serializer = SerializerFactory.Create(reader.ReadRequiredString());
        TargetMethod target = reader.ReadTarget();
        int count = reader.ReadInt32();
        return (serializer, target, count, reader.ReadBytes());
    }

    public static byte[] WriteFailure(RemoteError error)
    {
        var writer = new MessageWriter();
        writer.Reset(MessageKind.Results).WriteByte(1);
        writer.WriteError(error);
        return writer.WrittenMemory.ToArray();
    }

    public static byte[] WriteResults(IShmObjectSerializer serializer, Type arrayType, Array results, List<(int Index, RemoteError Error)>? errors)
    {
        var writer = new MessageWriter();
        writer.Reset(MessageKind.Results).WriteByte(0);
        writer.WriteLengthPrefixed((serializer, arrayType, results), static (s, w) => s.serializer.Serialize(s.arrayType, s.results, w));
        writer.WriteInt32(errors?.Count ?? 0);
        foreach ((int index, RemoteError error) in errors ?? [])
        {
            writer.WriteInt32(index);
            writer.WriteError(error);
        }

        return writer.WrittenMemory.ToArray();
    }

    /// <summary>Reads a result message: the values, and the items that failed (null when none did).</summary>
    /// <exception cref="ShmRemoteException">The whole chunk failed in the worker.</exception>
    /// <exception cref="InvalidDataException">The results do not deserialize as <typeparamref name="TResult"/>.</exception>
    public static (TResult[] Values, Dictionary<int, ShmRemoteException>? Errors) ReadResults<TResult>(IShmObjectSerializer serializer, ReadOnlyMemory<byte> body, string describe)
    {
        var reader = new MessageReader(body);
        _ = reader.ReadKind();
        if (reader.ReadByte() != 0)
        {
            throw reader.ReadError().ToException();
        }

        ReadOnlyMemory<byte> values = reader.ReadBytes();
        TResult[] results;
        try
        {
            results = (TResult[]?)serializer.Deserialize(typeof(TResult[]), values) ?? [];
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"The results of {describe} do not deserialize as {typeof(TResult).FullName}[] with {serializer.GetType().Name}: {e.Message}", e);
        }

        int errorCount = reader.ReadInt32();
        Dictionary<int, ShmRemoteException>? errors = null;
        for (int i = 0; i < errorCount; i++)
        {
            errors ??= [];
            errors[reader.ReadInt32()] = reader.ReadError().ToException();
        }

        return (results, errors);
    }
}

/// <summary>Runs one chunk of a target in a worker: typed, so items are neither boxed nor invoked by reflection one by one.</summary>
internal abstract class ChunkRunner
{
    /// <summary>Runs every item; the result message (never throws for a user exception: it becomes that item's error).</summary>
    public abstract byte[] Run(IShmObjectSerializer serializer, ReadOnlyMemory<byte> items, int count);

    public static ChunkRunner Create(ResolvedTarget target)
    {
        Type argument = target.ArgumentType;
        Type result = target.Method.ReturnType == typeof(void) ? typeof(object) : target.Method.ReturnType;
        return (ChunkRunner)Activator.CreateInstance(typeof(ChunkRunner<,>).MakeGenericType(argument, result), target)!;
    }
}

/// <summary>The runner for a target whose wire argument is <typeparamref name="TArg"/> and result <typeparamref name="TResult"/>.</summary>
internal sealed class ChunkRunner<TArg, TResult> : ChunkRunner
{
    private readonly Func<TArg, TResult> _function;

    public ChunkRunner(ResolvedTarget target)
    {
        // One parameter: a typed delegate over the method itself. Several (Starmap): spread the tuple by reflection.
        _function = target.Method.GetParameters().Length == 1 && target.Method.ReturnType == typeof(TResult)
            ? target.Method.CreateDelegate<Func<TArg, TResult>>(target.Instance)
            : argument => (TResult)target.Invoke(argument)!;
    }

    public override byte[] Run(IShmObjectSerializer serializer, ReadOnlyMemory<byte> items, int count)
    {
        TArg[] arguments;
        try
        {
            arguments = (TArg[]?)serializer.Deserialize(typeof(TArg[]), items) ?? [];
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return TaskWire.WriteFailure(RemoteError.From(new InvalidDataException(
                $"The worker could not read the task's arguments as {typeof(TArg).FullName}[]: {e.Message}", e)));
        }

        var results = new TResult[arguments.Length];
        List<(int, RemoteError)>? errors = null;
        for (int i = 0; i < arguments.Length; i++)
        {
            try
            {
                results[i] = _function(arguments[i]);
            }
#pragma warning disable CA1031 // A user exception fails its item only; it goes back to the caller.
            catch (Exception e)
#pragma warning restore CA1031
            {
                (errors ??= []).Add((i, RemoteError.From(e)));
            }
        }

        try
        {
            return TaskWire.WriteResults(serializer, typeof(TResult[]), results, errors);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return TaskWire.WriteFailure(RemoteError.From(new InvalidDataException(
                $"The worker could not serialize the results as {typeof(TResult).FullName}[]: {e.Message}", e)));
        }
    }
}
