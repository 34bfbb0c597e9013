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
}
