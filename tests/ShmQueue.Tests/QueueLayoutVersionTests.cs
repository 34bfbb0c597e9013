using System.Buffers.Binary;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// Queues with features carry layout version 3, so version-2 peers refuse them; plain queues stay version 2. A newer
/// version or an unknown feature bit is refused with a message that says so.
/// </summary>
[TestClass]
public sealed class QueueLayoutVersionTests
{
    private const int ControlOffset = SegmentHeaderDescriptor.HeaderSize;

    private static TempSegment<ShmQueue> NewQueue(string what, bool acknowledged = false, bool joinable = false) =>
        TempSegment.Create(what, n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 4096, Acknowledged = acknowledged, Joinable = joinable }));

    private static uint VersionOf(string path)
    {
        byte[] header = new byte[SegmentHeaderDescriptor.HeaderSize];
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        file.ReadExactly(header);
        return BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(SegmentHeaderDescriptor.LayoutVersionOffset));
    }

    /// <summary>Writes a 32-bit word at <paramref name="offset"/> of the file; in the header, the checksum is made to match.</summary>
    private static void Poke(string path, int offset, uint value)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        byte[] word = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(word, value);
        file.Position = offset;
        file.Write(word);
        if (offset < SegmentHeaderDescriptor.HeaderSize)
        {
            byte[] header = new byte[SegmentHeaderDescriptor.HeaderSize];
            file.Position = 0;
            file.ReadExactly(header);
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(SegmentHeaderDescriptor.ChecksumOffset), SegmentHeaderDescriptor.Checksum(header));
            file.Position = 0;
            file.Write(header);
        }
    }

    [TestMethod]
    public void Plain_queues_keep_version_2_and_queues_with_features_get_version_3()
    {
        using TempSegment<ShmQueue> plain = NewQueue("qver2");
        using TempSegment<ShmQueue> acknowledged = NewQueue("qver3a", acknowledged: true);
        using TempSegment<ShmQueue> joinable = NewQueue("qver3j", joinable: true);
        Assert.AreEqual(2u, VersionOf(plain.Path));
        Assert.AreEqual(3u, VersionOf(acknowledged.Path));
        Assert.AreEqual(3u, VersionOf(joinable.Path));

        using ShmQueue opened = ShmQueue.Open(acknowledged.Name);
        Assert.IsTrue(opened.IsAcknowledged);
    }

    [TestMethod]
    public void A_queue_of_a_newer_layout_version_is_refused_with_a_clear_reason()
    {
        using TempSegment<ShmQueue> queue = NewQueue("qver4", acknowledged: true);
        Poke(queue.Path, SegmentHeaderDescriptor.LayoutVersionOffset, 4);
        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmQueue.Open(queue.Name, new ShmQueueOptions { OpenTimeout = TimeSpan.Zero }));
        Assert.AreEqual(ShmSegmentError.UnsupportedVersion, e.Error, e.Message);
        StringAssert.Contains(e.Message, "layout version 4");
        StringAssert.Contains(e.Message, "newer ShmIpc");
    }

    [TestMethod]
    public void Version_3_is_a_queue_version_only()
    {
        using TempSegment<ShmSegment> segment = RawSegments.CreateTemp("rawver3");
        Poke(segment.Path, SegmentHeaderDescriptor.LayoutVersionOffset, 3);
        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => RawSegments.Open(segment.Name));
        Assert.AreEqual(ShmSegmentError.UnsupportedVersion, e.Error, e.Message);
    }

    [TestMethod]
    [DataRow(8u, "newer ShmIpc", DisplayName = "a feature bit this build does not know")]
    [DataRow(3u, "both acknowledged and joinable", DisplayName = "acknowledged and joinable together")]
    public void A_queue_with_feature_bits_this_build_cannot_honour_is_refused(uint features, string reason)
    {
        using TempSegment<ShmQueue> queue = NewQueue("qfeat", joinable: true);
        Poke(queue.Path, ControlOffset + QueueDescriptor.FeaturesOffset, features);
        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmQueue.Open(queue.Name, new ShmQueueOptions { OpenTimeout = TimeSpan.Zero }));
        StringAssert.Contains(e.Message, "feature", e.Message);
        StringAssert.Contains(e.Message, reason);
        StringAssert.Contains(e.Message, queue.Name);
    }
}
