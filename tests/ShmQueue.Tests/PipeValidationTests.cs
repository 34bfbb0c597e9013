using ShmIpc.Layout;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>What the pipe refuses: oversized messages, small buffers, a second connect, bad options and corrupted records, positions and control blocks. Cross-process: <see cref="PipeProcessTests"/>.</summary>
[TestClass]
public sealed class PipeValidationTests
{
    [TestMethod]
    public void An_oversized_message_is_refused_before_anything_is_written()
    {
        // Longer than MaxMessageLength goes through a side segment (PipeLargeMessageTests); longer than MaxLargeMessageLength is refused.
        const int Limit = (ShmPipeOptions.DefaultCapacity / 4) + 100;
        using var pair = new PipePair("oversize", new ShmPipeOptions { MaxLargeMessageLength = Limit });
        using var view = new PipeFileView(pair.Name);
        long tail = view.Tail(1);
        var e = Assert.ThrowsExactly<ArgumentException>(() => pair.A.Send(new byte[Limit + 1]));
        StringAssert.Contains(e.Message, pair.Name);
        Assert.AreEqual(tail, view.Tail(1), "tail unchanged");
        Assert.IsFalse(pair.B.Poll(TimeSpan.Zero), "nothing arrived");
        pair.A.Send(new byte[pair.A.MaxMessageLength]);
        Assert.AreEqual(pair.A.MaxMessageLength, pair.B.Receive().Length, "the maximum itself is fine");
    }

    [TestMethod]
    public void ReceiveInto_a_buffer_too_small_throws_and_leaves_the_message_unread()
    {
        using var pair = new PipePair("small");
        pair.A.Send(PipeMessages.Make(1, 100));
        Assert.ThrowsExactly<ArgumentException>(() => pair.B.ReceiveInto(new byte[99]));
        var buffer = new byte[200];
        Assert.AreEqual(100, pair.B.ReceiveInto(buffer));
        Assert.IsTrue(PipeMessages.Matches(1, buffer.AsSpan(0, 100)));
    }

    [TestMethod]
    public void A_second_connect_is_refused_naming_the_pipe()
    {
        using var pair = new PipePair("second");
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ShmPipe.Connect(pair.Name));
        StringAssert.Contains(e.Message, pair.Name);
        StringAssert.Contains(e.Message, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        pair.A.Send([1, 2, 3]);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, pair.B.Receive(), "the refused attempt disturbed nothing");
    }

    [TestMethod]
    public void Invalid_options_are_refused()
    {
        string name = TestNames.Unique("opts");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { Capacity = 3000 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { Capacity = 512 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096, MaxMessageLength = 2041 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { MaxMessageLength = -1 }));
        Assert.ThrowsExactly<ArgumentException>(() => ShmPipe.Create("bad/name"));
        Assert.ThrowsExactly<FileNotFoundException>(() => ShmPipe.Connect(name));
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    [DataRow(SpscRingDescriptor.LengthOffset, 100_000, DisplayName = "length beyond the maximum")]
    [DataRow(SpscRingDescriptor.LengthOffset, -8, DisplayName = "negative length")]
    [DataRow(SpscRingDescriptor.LengthOffset, 64, DisplayName = "length beyond the tail")]
    [DataRow(SpscRingDescriptor.TypeOffset, 7, DisplayName = "unknown record type")]
    [DataRow(SpscRingDescriptor.TypeOffset, SpscRingDescriptor.PaddingType, DisplayName = "padding in the middle")]
    public unsafe void A_corrupted_record_header_throws_ShmCorruptionException_and_consumes_nothing(int offset, int value)
    {
        using var pair = new PipePair("corrupt");
        using var view = new PipeFileView(pair.Name);
        pair.A.Send(PipeMessages.Make(0, 16));
        pair.A.Send(PipeMessages.Make(1, 16));
        Assert.AreEqual(48, view.Tail(1));
        *(int*)(view.RingData(1) + 24 + offset) = value;

        pair.B.Receive();
        var e = Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Receive());
        Assert.AreEqual(pair.Name, e.SegmentName);
        Assert.AreEqual(24, e.Position);
        StringAssert.Contains(e.Message, pair.Name);
        Assert.AreEqual(24, view.Head(1), "nothing consumed");
        Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.ReceiveInto(new byte[100]));
    }

    [TestMethod]
    [DataRow(12L, DisplayName = "unaligned tail")]
    [DataRow(8192L, DisplayName = "tail more than a ring ahead")]
    [DataRow(-64L, DisplayName = "tail behind head")]
    public unsafe void A_corrupted_tail_throws_ShmCorruptionException(long tail)
    {
        using var pair = new PipePair("ctail");
        using var view = new PipeFileView(pair.Name);
        MappedAtomics.WriteInt64Release(view.RingControl(1) + SpscRingDescriptor.TailOffset, tail);
        var e = Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Receive());
        Assert.AreEqual(tail, e.Position);
    }

    [TestMethod]
    public unsafe void A_corrupted_head_throws_ShmCorruptionException_in_the_sender()
    {
        using var pair = new PipePair("chead", TestPipes.Options(capacity: 1024));
        using var view = new PipeFileView(pair.Name);
        MappedAtomics.WriteInt64Release(view.RingControl(1) + SpscRingDescriptor.HeadOffset, 4096);
        Assert.ThrowsExactly<ShmCorruptionException>(() =>
        {
            for (int i = 0; i < 20; i++)
            {
                pair.A.Send(new byte[100]);
            }
        });
    }

    [TestMethod]
    [DataRow(PipeDescriptor.CapacityOffset, 3000L, DisplayName = "capacity not a power of two")]
    [DataRow(PipeDescriptor.CapacityOffset, 8192L, DisplayName = "capacity larger than the data region")]
    [DataRow(PipeDescriptor.MaxMessageLengthOffset, 4000L, DisplayName = "maximum message beyond half the ring")]
    [DataRow(PipeDescriptor.RingCountOffset, 3L, DisplayName = "ring count")]
    [DataRow(PipeDescriptor.RingsOffset + SpscRingDescriptor.TailOffset, 5000L, DisplayName = "tail beyond a ring")]
    public unsafe void Connect_refuses_an_invalid_control_block(int offset, long value)
    {
        string name = TestNames.Unique("cblock");
        using ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        using (var view = new PipeFileView(name))
        {
            if (offset == PipeDescriptor.RingCountOffset)
            {
                *(int*)(view.Control + offset) = (int)value;
            }
            else
            {
                *(long*)(view.Control + offset) = value;
            }
        }

        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmPipe.Connect(name));
        Assert.AreEqual(ShmSegmentError.Corrupted, e.Error);
        StringAssert.Contains(e.Message, name);
    }
}
