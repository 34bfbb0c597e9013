using System.Buffers.Binary;

namespace ShmIpc.Tests.Common;

/// <summary>
/// Messages of any size whose bytes prove where they came from: sender id and sequence number in the first 8 bytes,
/// then a pattern derived from both, so a torn, shifted or mixed-up payload fails <see cref="Check"/>.
/// </summary>
internal static class LargeMessages
{
    public static byte[] Make(int sender, int sequence, int length)
    {
        byte[] bytes = new byte[length];
        Fill(bytes, sender, sequence);
        return bytes;
    }

    public static void Fill(Span<byte> bytes, int sender, int sequence)
    {
        byte seed = (byte)(sender * 7 + sequence * 13);
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(seed + (i % 251));
        }

        if (bytes.Length >= 8)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes, sender);
            BinaryPrimitives.WriteInt32LittleEndian(bytes[4..], sequence);
        }
    }

    /// <summary>The (sender, sequence) of a message made by <see cref="Make"/>, after checking every byte; throws if it is not one.</summary>
    public static (int Sender, int Sequence) Check(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 8)
        {
            throw new InvalidDataException($"a {bytes.Length}-byte message is too short to carry its origin");
        }

        int sender = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        int sequence = BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]);
        byte seed = (byte)(sender * 7 + sequence * 13);
        for (int i = 8; i < bytes.Length; i++)
        {
            if (bytes[i] != (byte)(seed + (i % 251)))
            {
                throw new InvalidDataException($"message {sender}/{sequence} of {bytes.Length} bytes differs at byte {i}");
            }
        }

        return (sender, sequence);
    }

    /// <summary>The side-segment files in /dev/shm that process <paramref name="pid"/> created.</summary>
    public static string[] SideFilesOf(int pid) => Directory.GetFiles("/dev/shm", $"shmipc.side-{pid}-*");
}
