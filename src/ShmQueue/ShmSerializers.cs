using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace ShmIpc;

/// <summary>
/// Turns values into message bytes and back, for the typed forms of the Queue and the Pipe
/// (<c>ShmQueue&lt;T&gt;</c>, <c>ShmConnection.Send&lt;T&gt;</c>). Implementations must be thread-safe.
/// </summary>
/// <typeparam name="T">The value type carried.</typeparam>
public interface IShmSerializer<T>
{
    /// <summary>Writes <paramref name="value"/> to <paramref name="destination"/>.</summary>
    void Serialize(T value, IBufferWriter<byte> destination);

    /// <summary>Reads a value from the whole of <paramref name="source"/>.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a valid encoding.</exception>
    T Deserialize(ReadOnlySpan<byte> source);
}

/// <summary>The serializers ShmIpc provides: UTF-8 strings, byte arrays, and unmanaged structs as their bytes.</summary>
public static class ShmSerializers
{
    /// <summary>Strings as UTF-8 without a terminator.</summary>
    public static IShmSerializer<string> Utf8String { get; } = new Utf8StringSerializer();

    /// <summary>Byte arrays as themselves.</summary>
    public static IShmSerializer<byte[]> Bytes { get; } = new BytesSerializer();

    /// <summary>An unmanaged struct as its in-memory bytes (same layout on both sides: same struct, same architecture).</summary>
    public static IShmSerializer<T> Unmanaged<T>()
        where T : unmanaged => UnmanagedSerializer<T>.Instance;

    /// <summary>
    /// A nullable value as one marker byte (0 for null, 1 for a value) followed, for a value, by what
    /// <paramref name="inner"/> writes.
    /// </summary>
    public static IShmSerializer<T?> Nullable<T>(IShmSerializer<T> inner)
        where T : struct
    {
        ArgumentNullException.ThrowIfNull(inner);
        return new NullableSerializer<T>(inner);
    }

    /// <summary>
    /// The serializer a typed endpoint (<see cref="ShmQueue{T}"/>, a pipe end's typed calls) uses: <paramref name="given"/>,
    /// else the built-in one for <typeparamref name="T"/>, looked up once per type.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="given"/> is null and <typeparamref name="T"/> has no built-in serializer.</exception>
    internal static IShmSerializer<T> Resolve<T>(IShmSerializer<T>? given, string paramName = "serializer") =>
        given ?? DefaultOf<T>.Instance
            ?? throw new ArgumentException($"There is no built-in serializer for {typeof(T)}; pass an IShmSerializer<{typeof(T).Name}>.", paramName);

    /// <summary>The cache behind <see cref="Resolve{T}"/>: <see cref="GetDefault{T}"/> runs once per type.</summary>
    private static class DefaultOf<T>
    {
        public static readonly IShmSerializer<T>? Instance = GetDefault<T>();
    }

    /// <summary>
    /// The built-in serializer for <typeparamref name="T"/>: <see cref="Utf8String"/>, <see cref="Bytes"/>,
    /// <see cref="Unmanaged{T}"/> for unmanaged types, <see cref="Nullable{T}"/> over one of those for
    /// <c>Nullable&lt;T&gt;</c>; otherwise null (never throws: a type without one is not an error here).
    /// </summary>
    public static IShmSerializer<T>? GetDefault<T>()
    {
        if (typeof(T) == typeof(string))
        {
            return (IShmSerializer<T>)Utf8String;
        }

        if (typeof(T) == typeof(byte[]))
        {
            return (IShmSerializer<T>)Bytes;
        }

        if (System.Nullable.GetUnderlyingType(typeof(T)) is Type underlying)
        {
            // Nullable<U> holds no references when U holds none, yet it does not meet the 'unmanaged'
            // constraint: it gets its own serializer over U's, or none when U has none.
            object? inner = typeof(ShmSerializers).GetMethod(nameof(GetDefault))!.MakeGenericMethod(underlying).Invoke(null, null);
            return inner is null
                ? null
                : (IShmSerializer<T>)Activator.CreateInstance(typeof(NullableSerializer<>).MakeGenericType(underlying), inner)!;
        }

        if (!RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            try
            {
                return (IShmSerializer<T>)Activator.CreateInstance(typeof(UnmanagedSerializer<>).MakeGenericType(typeof(T)))!;
            }
            catch (ArgumentException)
            {
                return null; // no references, yet not 'unmanaged' for the type system: no built-in serializer
            }
        }

        return null;
    }

    private sealed class NullableSerializer<T>(IShmSerializer<T> inner) : IShmSerializer<T?>
        where T : struct
    {
        private const byte NullMarker = 0;
        private const byte ValueMarker = 1;

        public void Serialize(T? value, IBufferWriter<byte> destination)
        {
            Span<byte> marker = destination.GetSpan(1);
            marker[0] = value.HasValue ? ValueMarker : NullMarker;
            destination.Advance(1);
            if (value.HasValue)
            {
                inner.Serialize(value.GetValueOrDefault(), destination);
            }
        }

        public T? Deserialize(ReadOnlySpan<byte> source) => source switch
        {
            [NullMarker] => null,
            [ValueMarker, ..] => inner.Deserialize(source[1..]),
            _ => throw new InvalidDataException($"A {typeof(T).Name}? message starts with a marker byte 0 (null, alone) or 1 (a value); this one has {source.Length} byte(s) starting with {(source.IsEmpty ? "nothing" : source[0].ToString(System.Globalization.CultureInfo.InvariantCulture))}."),
        };
    }

    private sealed class Utf8StringSerializer : IShmSerializer<string>
    {
        public void Serialize(string value, IBufferWriter<byte> destination)
        {
            ArgumentNullException.ThrowIfNull(value);
            int written = Encoding.UTF8.GetBytes(value, destination.GetSpan(Encoding.UTF8.GetMaxByteCount(value.Length)));
            destination.Advance(written);
        }

        public string Deserialize(ReadOnlySpan<byte> source) => Encoding.UTF8.GetString(source);
    }

    private sealed class BytesSerializer : IShmSerializer<byte[]>
    {
        public void Serialize(byte[] value, IBufferWriter<byte> destination)
        {
            ArgumentNullException.ThrowIfNull(value);
            destination.Write(value);
        }

        public byte[] Deserialize(ReadOnlySpan<byte> source) => source.ToArray();
    }

    private sealed class UnmanagedSerializer<T> : IShmSerializer<T>
        where T : unmanaged
    {
        public static readonly UnmanagedSerializer<T> Instance = new();

        public void Serialize(T value, IBufferWriter<byte> destination) =>
            destination.Write(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

        public T Deserialize(ReadOnlySpan<byte> source)
        {
            if (source.Length != Unsafe.SizeOf<T>())
            {
                throw new InvalidDataException($"A {typeof(T).Name} is {Unsafe.SizeOf<T>()} bytes; the message has {source.Length}.");
            }

            return MemoryMarshal.Read<T>(source);
        }
    }
}
