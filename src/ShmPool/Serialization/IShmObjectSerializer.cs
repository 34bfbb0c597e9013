using System.Buffers;

namespace ShmIpc;

/// <summary>
/// Turns the arguments and results of <see cref="ShmProcess"/> and <see cref="ShmPool"/> tasks into bytes and back.
/// The child process makes its own instance from the type's public parameterless constructor, so both
/// sides use the same implementation. Implementations must be thread-safe.
/// </summary>
public interface IShmObjectSerializer
{
    /// <summary>Writes <paramref name="value"/>, of type <paramref name="type"/>, to <paramref name="destination"/>.</summary>
    void Serialize(Type type, object? value, IBufferWriter<byte> destination);

    /// <summary>Reads a value of type <paramref name="type"/> from the whole of <paramref name="source"/>.</summary>
    object? Deserialize(Type type, ReadOnlyMemory<byte> source);
}
