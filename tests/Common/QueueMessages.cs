using System.Buffers.Binary;

namespace ShmIpc.Tests.Common;

/// <summary>
/// Self-checking messages for cross-process queue tests: producer id, sequence number, a checksum of
/// the payload, then a payload whose length and bytes derive from (producer, sequence).
/// </summary>
internal static class QueueMessages
{
    public const int HeaderLength = 12;

    /// <summary>A stop marker: producer id -1.</summary>
    public static byte[] Stop() => BitConverter.GetBytes(-1);

    public static int LengthOf(int producer, int sequence, int maxPayload) =>
        HeaderLength + (int)((uint)(producer * 7919 + sequence * 104729) % (uint)(maxPayload + 1));

    public static int Write(Span<byte> destination, int producer, int sequence, int maxPayload)
    {
        int length = LengthOf(producer, sequence, maxPayload);
        BinaryPrimitives.WriteInt32LittleEndian(destination, producer);
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], sequence);
        Span<byte> payload = destination[HeaderLength..length];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)(producer + sequence + i);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Checksum(payload));
        return length;
    }

    /// <summary>Checks a received message; returns (producer, sequence) or throws.</summary>
    public static (int Producer, int Sequence) Verify(ReadOnlySpan<byte> message, int maxPayload)
    {
        if (message.Length < HeaderLength)
        {
            throw new InvalidDataException($"message of {message.Length} bytes is too short");
        }

        int producer = BinaryPrimitives.ReadInt32LittleEndian(message);
        int sequence = BinaryPrimitives.ReadInt32LittleEndian(message[4..]);
        uint checksum = BinaryPrimitives.ReadUInt32LittleEndian(message[8..]);
        if (message.Length != LengthOf(producer, sequence, maxPayload))
        {
            throw new InvalidDataException($"message {producer}/{sequence} has length {message.Length}, expected {LengthOf(producer, sequence, maxPayload)}");
        }

        ReadOnlySpan<byte> payload = message[HeaderLength..];
        for (int i = 0; i < payload.Length; i++)
        {
            if (payload[i] != (byte)(producer + sequence + i))
            {
                throw new InvalidDataException($"message {producer}/{sequence} byte {i} is wrong");
            }
        }

        if (Checksum(payload) != checksum)
        {
            throw new InvalidDataException($"message {producer}/{sequence} checksum mismatch");
        }

        return (producer, sequence);
    }

    private static uint Checksum(ReadOnlySpan<byte> bytes)
    {
        uint hash = 2166136261;
        foreach (byte b in bytes)
        {
            hash = (hash ^ b) * 16777619;
        }

        return hash;
    }
}
