using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MessagePack;
using MessagePack.Formatters;
using MessagePack.Resolvers;

namespace ShmIpc;

/// <summary>
/// The default <see cref="IShmObjectSerializer"/>: unmanaged values (numbers, enums, structs of them, value
/// tuples of them) as their bytes; everything else with MessagePack's contractless resolver, which takes plain
/// types as they are: records, classes with public properties, collections, no attributes needed.
/// </summary>
/// <remarks>
/// Chosen by measurement (round trip of a 4-field record with a list, .NET 10, 2 shared cores): MessagePack
/// contractless 0.86 µs, 59 bytes, 200 B allocated; System.Text.Json source-generated 1.04 µs, 79 bytes;
/// System.Text.Json reflection 1.59 µs; MemoryPack 0.26 µs but only for types marked [MemoryPackable]
/// (it rejects plain records). Plug MemoryPack in through <see cref="IShmObjectSerializer"/> when every type is annotated.
/// Both sides are one machine and one build, so unmanaged values need no portable encoding.
/// </remarks>
public sealed class ShmMessagePackSerializer : IShmObjectSerializer
{
    // Built on first use: MessagePack's resolvers take tens of milliseconds to set up (they load Reflection.Emit,
    // Linq.Expressions, regular expressions), which a worker that only ever sees unmanaged values never needs.
    private static MessagePackSerializerOptions Options => LazyOptions.Value;

    /// <summary>The raw codec of each type seen (null: not raw): in a holder made on first use, as a worker's Init names this
    /// serializer but its first tasks may never call it (the raw path), and the dictionary's assembly costs a load.</summary>
    private static ConcurrentDictionary<Type, RawCodec?> s_raw => RawCodecs.ByType;

    /// <summary>The shared instance.</summary>
    public static ShmMessagePackSerializer Instance { get; } = new();

    /// <inheritdoc/>
    public void Serialize(Type type, object? value, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(type);
        RawCodec? raw = s_raw.GetOrAdd(type, RawCodec.For);
        if (raw is not null)
        {
            raw.Write(value!, destination);
            return;
        }

        MessagePackSerializer.Serialize(type, destination, value, Options);
    }

    /// <inheritdoc/>
    public object? Deserialize(Type type, ReadOnlyMemory<byte> source)
    {
        ArgumentNullException.ThrowIfNull(type);
        RawCodec? raw = s_raw.GetOrAdd(type, RawCodec.For);
        if (raw is not null)
        {
            return raw.Read(source.Span);
        }

        try
        {
            return MessagePackSerializer.Deserialize(type, source, Options);
        }
        catch (MessagePackSerializationException e)
        {
            throw new InvalidDataException($"Cannot read a {type.Name} from {source.Length} bytes: {e.Message}", e);
        }
    }

    private static class RawCodecs
    {
        public static readonly ConcurrentDictionary<Type, RawCodec?> ByType = new();
    }

    /// <summary>Holds the options so that they are made when first read, not when the serializer is.</summary>
    private static class LazyOptions
    {
        public static readonly MessagePackSerializerOptions Value = MessagePackSerializerOptions.Standard
            .WithResolver(CompositeResolver.Create(HandleFormatterResolver.Instance, ContractlessStandardResolver.Instance));
    }

    /// <summary>An unmanaged type's bytes, through a generic instantiation made once per type.</summary>
    private abstract class RawCodec
    {
        public static RawCodec? For(Type type)
        {
            // Nullable<T> does not meet RawCodec<T>'s struct constraint (and its bytes would carry garbage when null): MessagePack writes it.
            if (type.ContainsGenericParameters || !type.IsValueType || type.IsByRefLike || type == typeof(object) || Nullable.GetUnderlyingType(type) is not null)
            {
                return null;
            }

            var codec = (RawCodec)Activator.CreateInstance(typeof(RawCodec<>).MakeGenericType(type))!;
            return codec.IsUnmanaged ? codec : null;
        }

        public abstract bool IsUnmanaged { get; }

        public abstract void Write(object value, IBufferWriter<byte> destination);

        public abstract object Read(ReadOnlySpan<byte> source);
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Made by reflection in RawCodec.For.")]
    private sealed class RawCodec<T> : RawCodec
        where T : struct
    {
        public override bool IsUnmanaged => !RuntimeHelpers.IsReferenceOrContainsReferences<T>();

        public override void Write(object value, IBufferWriter<byte> destination)
        {
            T typed = (T)value;
            int size = Unsafe.SizeOf<T>();
            Span<byte> span = destination.GetSpan(size);
            MemoryMarshal.Write(span, in typed);
            destination.Advance(size);
        }

        public override object Read(ReadOnlySpan<byte> source)
        {
            if (source.Length != Unsafe.SizeOf<T>())
            {
                throw new InvalidDataException($"A {typeof(T).Name} is {Unsafe.SizeOf<T>()} bytes; the message has {source.Length}.");
            }

            return MemoryMarshal.Read<T>(source);
        }
    }
}

/// <summary>
/// Resolves formatters for shared-memory handles, so a handle inside an argument (alone, in a tuple, in a
/// record) travels by name and arrives open in the child. See <see cref="HandleTransfer"/>.
/// </summary>
internal sealed class HandleFormatterResolver : IFormatterResolver
{
    public static readonly HandleFormatterResolver Instance = new();

    public IMessagePackFormatter<T>? GetFormatter<T>() => HandleTransfer.GetFormatter<T>();
}

/// <summary>
/// How shared-memory handles travel inside an argument: by name, reopened on the other side.
/// A pipe end (<see cref="ShmConnection"/>) is shared, as Python shares a Connection with a child: the parent's copy
/// stays usable, the child attaches to the same end, and several children may hold it; sends (and receives) on it
/// from all of them are serialized by the end's shared lock (see ShmConnection.Shared.cs). The peer sees the end
/// closed when its last holder closes it. A queue (<see cref="ShmQueue"/>, <see cref="ShmQueue{T}"/>) is shared
/// too: the child opens it by name and the parent's handle stays usable.
/// </summary>
internal static class HandleTransfer
{
    /// <summary>The formatter that moves handles of type <typeparamref name="T"/>, or null for any other type.</summary>
    public static IMessagePackFormatter<T>? GetFormatter<T>()
    {
        if (typeof(T) == typeof(ShmConnection))
        {
            return (IMessagePackFormatter<T>)(object)ConnectionFormatter.Instance;
        }

        if (typeof(T) == typeof(ShmQueue))
        {
            return (IMessagePackFormatter<T>)(object)QueueFormatter.Instance;
        }

        if (typeof(T).IsGenericType && typeof(T).GetGenericTypeDefinition() == typeof(ShmQueue<>))
        {
            Type formatter = typeof(TypedQueueFormatter<>).MakeGenericType(typeof(T).GetGenericArguments());
            return (IMessagePackFormatter<T>)Activator.CreateInstance(formatter)!;
        }

        return SharedStateFormatters.Get<T>();
    }

    /// <summary>
    /// A queue travels by name and is opened again on the other side: both processes hold it, the parent's
    /// handle stays usable (a queue has many users), and each side disposes its own. The receiving side
    /// opens it with default options (options are per handle: wait strategy, logger).
    /// </summary>
    private sealed class QueueFormatter : IMessagePackFormatter<ShmQueue?>
    {
        public static readonly QueueFormatter Instance = new();

        public void Serialize(ref MessagePackWriter writer, ShmQueue? value, MessagePackSerializerOptions options)
        {
            if (value is null)
            {
                writer.WriteNil();
                return;
            }

            writer.Write(value.Name);
        }

        public ShmQueue? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            reader.TryReadNil() ? null : ShmQueue.Open(reader.ReadString() ?? throw new InvalidDataException("A queue's name is missing."));
    }

    /// <summary>
    /// A typed queue: its name, reopened with the built-in serializer of <typeparamref name="TItem"/> (a queue's
    /// custom serializer cannot travel: the typed queue does not expose it).
    /// </summary>
    /// <typeparam name="TItem">The queue's item type.</typeparam>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Made by reflection in GetFormatter.")]
    private sealed class TypedQueueFormatter<TItem> : IMessagePackFormatter<ShmQueue<TItem>?>
    {
        public void Serialize(ref MessagePackWriter writer, ShmQueue<TItem>? value, MessagePackSerializerOptions options)
        {
            if (value is null)
            {
                writer.WriteNil();
                return;
            }

            if (ShmSerializers.GetDefault<TItem>() is null)
            {
                throw new NotSupportedException($"A ShmQueue<{typeof(TItem).Name}> travels by name and is reopened with the built-in serializer of its item type, " +
                    $"and {typeof(TItem).Name} has none. Pass the queue's name and open it with your serializer on the other side.");
            }

            writer.Write(value.Name);
        }

        public ShmQueue<TItem>? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil())
            {
                return null;
            }

            string name = reader.ReadString() ?? throw new InvalidDataException("A queue's name is missing.");
            ShmQueue queue = ShmQueue.Open(name);
            try
            {
                return new ShmQueue<TItem>(queue);
            }
            catch
            {
                queue.Dispose();
                throw;
            }
        }
    }

    private sealed class ConnectionFormatter : IMessagePackFormatter<ShmConnection?>
    {
        public static readonly ConnectionFormatter Instance = new();

        public void Serialize(ref MessagePackWriter writer, ShmConnection? value, MessagePackSerializerOptions options)
        {
            if (value is null)
            {
                writer.WriteNil();
                return;
            }

            writer.Write(value.Share());
        }

        public ShmConnection? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil())
            {
                return null;
            }

            string token = reader.ReadString() ?? throw new InvalidDataException("A pipe share token is missing.");
            return Internal.ShmQueueContract.AcquireHandover(token);
        }
    }
}

/// <summary>
/// Shared-state objects (<see cref="ShmSharedMemory"/>, <see cref="ShmArray{T}"/>, <see cref="ShmValue{T}"/>, <see cref="ShmCounter"/>,
/// <see cref="ShmLock"/>, <see cref="ShmEvent"/>, <see cref="ShmSemaphore"/>, <see cref="ShmBarrier"/>) travel by name as a queue does, and
/// are opened again on the other side with default options (what the creator fixed, such as a lock's recursion, is in the segment;
/// a barrier opened there registers the child as a participant). The lock of an array or value travels with its array or value,
/// not alone; a <see cref="ShmCondition"/> does not travel (pass its name and its lock, and open it there).
/// </summary>
internal static partial class SharedStateFormatters
{
    public static IMessagePackFormatter<T>? Get<T>()
    {
        Type type = typeof(T);
        object? formatter =
            type == typeof(ShmSharedMemory) ? new ByName<ShmSharedMemory>(v => v.Name, n => ClosedAfterItem(ShmSharedMemory.Open(n)))
            : type == typeof(ShmCounter) ? new ByName<ShmCounter>(v => v.Name, n => ShmCounter.Open(n))
            : type == typeof(ShmLock) ? new ByName<ShmLock>(v => v.Name, n => ShmLock.Open(n))
            : type == typeof(ShmEvent) ? new ByName<ShmEvent>(v => v.Name, n => ShmEvent.Open(n))
            : type == typeof(ShmSemaphore) ? new ByName<ShmSemaphore>(v => v.Name, n => ShmSemaphore.Open(n))
            : type == typeof(ShmBarrier) ? new ByName<ShmBarrier>(v => v.Name, n => ShmBarrier.Open(n))
            : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ShmArray<>)
                ? Activator.CreateInstance(typeof(ArrayFormatter<>).MakeGenericType(type.GetGenericArguments()))
            : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ShmValue<>)
                ? Activator.CreateInstance(typeof(ValueFormatter<>).MakeGenericType(type.GetGenericArguments()))
            : null;
        return (IMessagePackFormatter<T>?)formatter;
    }

    /// <summary>Writes the object's name; reads a name and opens it.</summary>
    private class ByName<TObject>(Func<TObject, string> nameOf, Func<string, TObject> open) : IMessagePackFormatter<TObject?>
        where TObject : class
    {
        public void Serialize(ref MessagePackWriter writer, TObject? value, MessagePackSerializerOptions options)
        {
            if (value is null)
            {
                writer.WriteNil();
                return;
            }

            writer.Write(nameOf(value));
        }

        public TObject? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            reader.TryReadNil() ? null : open(reader.ReadString() ?? throw new InvalidDataException($"A {typeof(TObject).Name}'s name is missing."));
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Made by reflection in Get.")]
    private sealed class ArrayFormatter<TItem>() : ByName<ShmArray<TItem>>(v => v.Name, n => ClosedAfterItem(ShmArray<TItem>.Open(n)))
        where TItem : unmanaged;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Made by reflection in Get.")]
    private sealed class ValueFormatter<TItem>() : ByName<ShmValue<TItem>>(v => v.Name, n => ClosedAfterItem(ShmValue<TItem>.Open(n)))
        where TItem : unmanaged;
}
