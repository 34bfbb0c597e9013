namespace ShmIpc.Tests.Common;

/// <summary>Deterministic message contents for pipe tests, so either side can check what it got.</summary>
internal static class PipeMessages
{
    /// <summary>Message <paramref name="i"/> of <paramref name="length"/> bytes.</summary>
    public static byte[] Make(int i, int length)
    {
        var message = new byte[length];
        for (int j = 0; j < length; j++)
        {
            message[j] = (byte)((i * 31) + (j * 7) + 1);
        }

        return message;
    }

    /// <summary>True when <paramref name="message"/> is <see cref="Make"/>(<paramref name="i"/>, its length).</summary>
    public static bool Matches(int i, ReadOnlySpan<byte> message)
    {
        for (int j = 0; j < message.Length; j++)
        {
            if (message[j] != (byte)((i * 31) + (j * 7) + 1))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The length of message <paramref name="i"/> in a sweep over 0..<paramref name="max"/> that also hits the edges.</summary>
    public static int LengthOf(int i, int max) => Math.Max(0, (i % 4) switch
    {
        0 => i / 4 % (max + 1),
        1 => max - (i % 9),
        2 => i % 9,
        _ => (i * 37) % (max + 1),
    });

    /// <summary>"tag:i:" in ASCII, then bytes (i + k) % 251 up to <paramref name="length"/>: a torn or mixed message shows.</summary>
    public static byte[] Tagged(string tag, int i, int length)
    {
        byte[] head = System.Text.Encoding.ASCII.GetBytes($"{tag}:{i}:");
        var message = new byte[Math.Max(length, head.Length)];
        head.CopyTo(message, 0);
        for (int k = head.Length; k < message.Length; k++)
        {
            message[k] = (byte)((i + k) % 251);
        }

        return message;
    }

    /// <summary>Reads back <see cref="Tagged"/>: its tag and index, or null when the message is not whole.</summary>
    public static (string Tag, int Index)? ParseTagged(ReadOnlySpan<byte> message, int length)
    {
        string text = System.Text.Encoding.ASCII.GetString(message[..Math.Min(message.Length, 40)]);
        string[] parts = text.Split(':', 3);
        if (parts.Length < 3 || !int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out int i))
        {
            return null;
        }

        byte[] expected = Tagged(parts[0], i, length);
        return message.SequenceEqual(expected) ? (parts[0], i) : null;
    }
}
