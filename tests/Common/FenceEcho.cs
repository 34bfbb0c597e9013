using System.Buffers.Binary;

namespace ShmIpc.Tests.Common;

/// <summary>
/// The sleeper side of the fence stress tests (FenceTests, ShmTestHost "fence-echo"): receives bursts of messages, sleeping
/// before every one (<see cref="Strategy"/>: no spin, a ten-second sleep slice (the longest allowed), so a missed wake-up would leave it asleep
/// far past the test's deadline instead of being hidden by the next slice), and answers the last message of each burst
/// with its round number. A message is 16 bytes: round, index in the burst, burst length, 1 to stop.
/// </summary>
internal static class FenceEcho
{
    public const int MessageLength = 16;

    /// <summary>Every wait sleeps at once, for up to ten seconds: only a post wakes it in time.</summary>
    public static readonly ShmWaitStrategy Strategy = new() { SpinDuration = TimeSpan.Zero, SleepSlice = TimeSpan.FromSeconds(10) };

    /// <summary>How long one receive may wait before the echo gives up: longer than any test's deadline.</summary>
    private static readonly TimeSpan s_receiveTimeout = TimeSpan.FromMinutes(2);

    public static byte[] Message(int round, int index, int count, bool stop = false)
    {
        byte[] message = new byte[MessageLength];
        BinaryPrimitives.WriteInt32LittleEndian(message, round);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), index);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(8), count);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(12), stop ? 1 : 0);
        return message;
    }

    /// <summary>Serves until a stop message: receive with <paramref name="receive"/>, answer with <paramref name="reply"/>.</summary>
    public static async Task ServeAsync(Func<Memory<byte>, ValueTask<int>> receive, Action<byte[]> reply)
    {
        byte[] buffer = new byte[MessageLength];
        int expectedRound = 0, expectedIndex = 0;
        while (true)
        {
            int length = await receive(buffer).ConfigureAwait(false);
            if (length != MessageLength)
            {
                throw new InvalidOperationException($"fence echo: a message of {length} bytes, expected {MessageLength}");
            }

            int round = BinaryPrimitives.ReadInt32LittleEndian(buffer);
            int index = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(4));
            int count = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(8));
            if (BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(12)) == 1)
            {
                return;
            }

            if (round != expectedRound || index != expectedIndex)
            {
                throw new InvalidOperationException($"fence echo: got round {round} message {index}, expected round {expectedRound} message {expectedIndex}");
            }

            expectedIndex++;
            if (index == count - 1)
            {
                reply(Message(round, index, count));
                expectedRound++;
                expectedIndex = 0;
            }
        }
    }

    /// <summary>The echo over two queues, with blocking (sync) or async receives.</summary>
    public static Task ServeQueues(ShmQueue requests, ShmQueue replies, bool async) =>
        ServeAsync(async
            ? buffer => CopyAsync(requests.DequeueAsync(CancellationToken.None), buffer)
            : buffer => new ValueTask<int>(requests.Dequeue(buffer.Span, s_receiveTimeout)),
            message => replies.Enqueue(message));

    /// <summary>The echo over one duplex pipe end.</summary>
    public static Task ServePipe(ShmConnection pipe, bool async) =>
        ServeAsync(async
            ? buffer => pipe.ReceiveAsync(buffer, CancellationToken.None)
            : buffer => new ValueTask<int>(pipe.ReceiveInto(buffer.Span, s_receiveTimeout)),
            message => pipe.Send(message));

    private static async ValueTask<int> CopyAsync(ValueTask<byte[]> pending, Memory<byte> buffer)
    {
        byte[] message = await pending.ConfigureAwait(false);
        message.CopyTo(buffer);
        return message.Length;
    }
}
