using System.Buffers;
using BenchmarkDotNet.Attributes;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// Serialize + deserialize of one value into a reused buffer: ShmPool's default serializer
/// (<see cref="ShmMessagePackSerializer"/>, object-typed: what every Apply argument and Map item pays twice per
/// round trip) and <see cref="ShmSerializers.Unmanaged{T}"/> (raw bytes of an unmanaged value).
/// Expectation: zero allocations for Unmanaged; for the object-typed MessagePack path, an int's boxes in and
/// out (2 x 24 B) and for a string the new string (48 B for 13 chars).
/// </summary>
[MemoryDiagnoser]
public class SerializerBenchmarks
{
    private static readonly IShmSerializer<long> s_unmanagedLong = ShmSerializers.Unmanaged<long>();
    private static readonly IShmSerializer<Sample> s_unmanagedStruct = ShmSerializers.Unmanaged<Sample>();

    private readonly ArrayBufferWriter<byte> _buffer = new(256);
    private readonly ShmMessagePackSerializer _messagePack = ShmMessagePackSerializer.Instance;
    private int _i;

    /// <summary>A 32-byte unmanaged record.</summary>
    public record struct Sample(long A, long B, double C, int D, int E);

    [Benchmark(Baseline = true)]
    public long UnmanagedLong()
    {
        _buffer.ResetWrittenCount();
        s_unmanagedLong.Serialize(++_i, _buffer);
        return s_unmanagedLong.Deserialize(_buffer.WrittenSpan);
    }

    [Benchmark]
    public long UnmanagedStruct32B()
    {
        _buffer.ResetWrittenCount();
        s_unmanagedStruct.Serialize(new Sample(++_i, 2, 3, 4, 5), _buffer);
        return s_unmanagedStruct.Deserialize(_buffer.WrittenSpan).A;
    }

    [Benchmark]
    public object? MessagePackInt()
    {
        _buffer.ResetWrittenCount();
        _messagePack.Serialize(typeof(int), ++_i, _buffer);
        return _messagePack.Deserialize(typeof(int), _buffer.WrittenMemory);
    }

    [Benchmark]
    public object? MessagePackString()
    {
        _buffer.ResetWrittenCount();
        _messagePack.Serialize(typeof(string), "hello, worker", _buffer);
        return _messagePack.Deserialize(typeof(string), _buffer.WrittenMemory);
    }
}
