using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Pipe messages longer than MaxMessageLength go through side segments (issue 17).</summary>
[TestClass]
public sealed class PipeLargeMessageTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [TestMethod]
    public void Messages_of_0_MaxMessageLength_and_MaxMessageLength_plus_1_bytes_arrive_whole_in_every_read_form()
    {
        string name = TestNames.Unique("plarge");
        using ShmConnection a = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096 });
        using ShmConnection b = ShmPipe.Connect(name);
        int max = a.MaxMessageLength;
        foreach (int length in new[] { 0, max, max + 1, 50_000 })
        {
            byte[] message = LargeMessages.Make(0, length, length);
            a.Send(message);
            CollectionAssert.AreEqual(message, b.Receive(Generous), $"array, {length} bytes");

            b.Send(message, Generous);
            byte[] buffer = new byte[length + 1];
            Assert.AreEqual(length, a.ReceiveInto(buffer, Generous));
            CollectionAssert.AreEqual(message, buffer[..length], $"span, {length} bytes");

            a.Send(message);
            a.Send(message);
            int seen = 0;
            while (seen < 2)
            {
                seen += b.ReceiveMany(static (span, expected) => Assert.IsTrue(span.SequenceEqual(expected)), message, 2, Generous);
            }
        }

        byte[] big = LargeMessages.Make(0, 9, 20_000);
        a.Send(big);
        Assert.ThrowsExactly<ArgumentException>(() => b.ReceiveInto(new byte[19_999], TimeSpan.FromSeconds(5)));
        CollectionAssert.AreEqual(big, b.Receive(Generous), "a buffer too small leaves the message in the pipe");
    }

    [TestMethod]
    public void A_64_MiB_message_crosses_processes_through_a_pipe_both_ways()
    {
        string name = TestNames.Unique("plarge64");
        using ShmConnection end = ShmPipe.Create(name);
        using ChildProcess child = ChildProcess.Start("large-pipe-send", name, (64 << 20).ToString(CultureInfo.InvariantCulture));
        byte[] got = end.Receive(Generous);
        Assert.AreEqual(64 << 20, got.Length);
        Assert.AreEqual((1, 0), LargeMessages.Check(got));
        end.Send(LargeMessages.Make(0, 7, 64 << 20));
        Assert.AreEqual($"GOT {64 << 20} 7", child.WaitForLine("GOT", Generous));
        Assert.AreEqual(0, child.WaitForExit(Generous), child.StandardError);
    }
}
