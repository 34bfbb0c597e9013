using System.Buffers.Binary;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

[TestClass]
public sealed unsafe class SegmentTests
{
    private static string PathOf(string name) => "/dev/shm/shmipc." + name;

    [TestMethod]
    public void Create_then_open_sees_the_same_bytes_and_dispose_unlinks()
    {
        string name = TestNames.Unique("seg");
        using (ShmSegment created = RawSegments.Create(name))
        {
            Assert.IsTrue(File.Exists(PathOf(name)));
            Assert.AreEqual(2, TestNames.ShmFilesOf(name).Count(f => f.Contains("/sem.", StringComparison.Ordinal)));
            using ShmSegment opened = RawSegments.Open(name);
            Assert.AreEqual(created.Length, opened.Length);
            Assert.AreEqual(4096, opened.DataSize);
            created.Data[100] = 42;
            Assert.AreEqual(42, opened.Data[100]);
            Assert.AreEqual(Environment.ProcessId, opened.Creator.Pid);
            created.Unlink();
        }

        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public void Segment_files_are_created_with_mode_0600()
    {
        using TempSegment<ShmSegment> segment = RawSegments.CreateTemp("perm");
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(segment.Path));
    }

    [TestMethod]
    public void Group_access_gives_mode_0660_despite_the_umask()
    {
        using TempSegment<ShmSegment> segment = RawSegments.CreateTemp("perm-g", groupAccess: true);
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite,
            File.GetUnixFileMode(segment.Path));
    }

    [TestMethod]
    public void Creating_a_name_that_exists_fails_and_leaves_it_alone()
    {
        using TempSegment<ShmSegment> first = RawSegments.CreateTemp("twice");
        var e = Assert.ThrowsExactly<IOException>(() => RawSegments.Create(first.Name));
        StringAssert.Contains(e.Message, first.Name);
        StringAssert.Contains(e.Message, "is running");
        Assert.IsTrue(File.Exists(first.Path));
    }

    [TestMethod]
    public void Opening_a_missing_segment_names_it()
    {
        string name = TestNames.Unique("missing");
        var e = Assert.ThrowsExactly<FileNotFoundException>(() => RawSegments.Open(name));
        StringAssert.Contains(e.Message, name);
    }

    [TestMethod]
    public void Opening_as_another_kind_is_refused()
    {
        using TempSegment<ShmSegment> segment = RawSegments.CreateTemp("kind");
        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmSegment.Open(segment.Name, SegmentKind.Queue, TimeSpan.Zero));
        Assert.AreEqual(ShmSegmentError.WrongKind, e.Error);
        Assert.AreEqual(segment.Name, e.SegmentName);
    }

    // Each corruption is written into the file of a live segment; opening must refuse it with the right reason.
    [TestMethod]
    [DataRow(SegmentHeaderDescriptor.MagicOffset, 8, 0x1122334455667788L, false, ShmSegmentError.ForeignFormat, DisplayName = "magic")]
    [DataRow(SegmentHeaderDescriptor.LayoutVersionOffset, 4, 4L, false, ShmSegmentError.UnsupportedVersion, DisplayName = "future version")]
    [DataRow(SegmentHeaderDescriptor.LayoutVersionOffset, 4, 3L, true, ShmSegmentError.UnsupportedVersion, DisplayName = "version 3 (queues with features only) on another kind")]
    [DataRow(SegmentHeaderDescriptor.LayoutVersionOffset, 4, 1L, true, ShmSegmentError.UnsupportedVersion, DisplayName = "version 1 (before the queue's shutdown word)")]
    [DataRow(SegmentHeaderDescriptor.LayoutVersionOffset, 4, 0L, true, ShmSegmentError.UnsupportedVersion, DisplayName = "old version")]
    [DataRow(SegmentHeaderDescriptor.KindOffset, 4, 1L, false, ShmSegmentError.Corrupted, DisplayName = "kind without checksum")]
    [DataRow(SegmentHeaderDescriptor.KindOffset, 4, 2L, true, ShmSegmentError.WrongKind, DisplayName = "kind")]
    [DataRow(SegmentHeaderDescriptor.TotalSizeOffset, 8, 1L << 40, true, ShmSegmentError.Truncated, DisplayName = "total size larger than file")]
    [DataRow(SegmentHeaderDescriptor.TotalSizeOffset, 8, 256L, true, ShmSegmentError.Corrupted, DisplayName = "total size smaller than file")]
    [DataRow(SegmentHeaderDescriptor.HeaderSizeOffset, 4, 64L, true, ShmSegmentError.Corrupted, DisplayName = "header size")]
    [DataRow(SegmentHeaderDescriptor.ControlOffsetOffset, 8, 0L, true, ShmSegmentError.Corrupted, DisplayName = "control offset")]
    [DataRow(SegmentHeaderDescriptor.ControlSizeOffset, 8, 100L, true, ShmSegmentError.Corrupted, DisplayName = "control size misaligned")]
    [DataRow(SegmentHeaderDescriptor.ControlSizeOffset, 8, -128L, true, ShmSegmentError.Corrupted, DisplayName = "control size huge")]
    [DataRow(SegmentHeaderDescriptor.DataOffsetOffset, 8, 1L << 50, true, ShmSegmentError.Corrupted, DisplayName = "data offset")]
    [DataRow(SegmentHeaderDescriptor.DataSizeOffset, 8, 8192L, true, ShmSegmentError.Corrupted, DisplayName = "data size")]
    [DataRow(SegmentHeaderDescriptor.DataSizeOffset, 8, -1L, true, ShmSegmentError.Corrupted, DisplayName = "data size negative")]
    [DataRow(SegmentHeaderDescriptor.CreatorPidOffset, 4, -5L, true, ShmSegmentError.Corrupted, DisplayName = "creator pid")]
    [DataRow(SegmentHeaderDescriptor.SemaphoreCountOffset, 4, 1000L, true, ShmSegmentError.Corrupted, DisplayName = "semaphore count")]
    [DataRow(SegmentHeaderDescriptor.ChecksumOffset, 8, 12345L, false, ShmSegmentError.Corrupted, DisplayName = "checksum")]
    [DataRow(80, 8, 7L, false, ShmSegmentError.Corrupted, DisplayName = "reserved bytes")]
    public void A_corrupted_header_field_is_refused_with_its_reason(int offset, int width, long value, bool fixChecksum, ShmSegmentError expected)
    {
        using TempSegment<ShmSegment> segment = RawSegments.CreateTemp("corrupt");
        var header = new Span<byte>(segment.Object.Base, SegmentHeaderDescriptor.HeaderSize);
        if (width == 8)
        {
            BinaryPrimitives.WriteInt64LittleEndian(header[offset..], value);
        }
        else
        {
            BinaryPrimitives.WriteInt32LittleEndian(header[offset..], (int)value);
        }

        if (fixChecksum)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(header[SegmentHeaderDescriptor.ChecksumOffset..], SegmentHeaderDescriptor.Checksum(header));
        }

        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => RawSegments.Open(segment.Name));
        Assert.AreEqual(expected, e.Error, e.Message);
        StringAssert.Contains(e.Message, segment.Name);
    }

    [TestMethod]
    public void A_truncated_file_is_refused()
    {
        using TempSegment<ShmSegment> segment = RawSegments.CreateTemp("trunc");
        using (var stream = new FileStream(segment.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            stream.SetLength(1000);
        }

        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => RawSegments.Open(segment.Name));
        Assert.AreEqual(ShmSegmentError.Truncated, e.Error);
    }

    [TestMethod]
    public void A_file_shorter_than_a_header_is_refused_after_the_init_timeout()
    {
        using TempSegment file = TempSegment.Reserve("short");
        File.WriteAllBytes(file.Path, new byte[10]);
        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmSegment.Open(file.Name, SegmentKind.Raw, TimeSpan.FromMilliseconds(50)));
        Assert.AreEqual(ShmSegmentError.Truncated, e.Error);
    }

    [TestMethod]
    public void A_foreign_file_is_refused_and_not_removed_by_create()
    {
        using TempSegment file = TempSegment.Reserve("foreign");
        File.WriteAllBytes(file.Path, Enumerable.Repeat((byte)0xAB, 4096).ToArray());
        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => RawSegments.Open(file.Name));
        Assert.AreEqual(ShmSegmentError.ForeignFormat, e.Error);
        var c = Assert.ThrowsExactly<IOException>(() => RawSegments.Create(file.Name));
        StringAssert.Contains(c.Message, "not ours");
        Assert.IsTrue(File.Exists(file.Path));
    }

    [TestMethod]
    public void A_segment_left_by_a_killed_creator_is_recreated_and_found_by_the_stale_sweep()
    {
        string name = TestNames.Unique("stale");
        ChildProcess.StartReadyThenKill9("raw-create-hold", name);

        // The automatic sweep of any ShmIpc process on the machine (the other test assembly's, say) may be first.
        IReadOnlyList<string> removed = ShmMaintenance.RemoveStaleSegments();
        Assert.IsTrue(removed.Contains(name) || !File.Exists(PathOf(name)), "the killed creator's segment is stale");
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);

        ChildProcess.StartReadyThenKill9("raw-create-hold", name);

        // Create finds the dead creator's segment and makes a fresh one.
        using ShmSegment segment = RawSegments.Create(name);
        Assert.AreEqual(Environment.ProcessId, segment.Creator.Pid);
        segment.Unlink();
    }

    [TestMethod]
    public void A_create_meeting_another_sweeper_mid_removal_waits_for_it_and_never_throws_its_lock()
    {
        // A sweeper removing a stale segment holds its exclusive flock for a moment (this process's automatic sweep,
        // or another process's). Opening the file meanwhile fails with a sharing violation (.NET takes a shared flock
        // on open): a Create over the stale name must report that as "busy" and retry, not throw the sharing violation.
        string name = TestNames.Unique("stalebusy");
        ChildProcess.StartReadyThenKill9("raw-create-hold", name);
        using (var sweeper = new FileStream(PathOf(name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            Assert.IsTrue(SharedMemoryPlatform.Current.TryLockExclusive(sweeper), "the test holds the sweeper's lock");
            Assert.AreEqual(ShmSegment.Removal.Busy, ShmSegment.TryRemoveStale(ShmName.OsPrefix + name, SharedMemoryPlatform.Current, automatic: false, out string? reason));
            Assert.AreEqual("another process is removing it", reason);
            IOException refused = Assert.ThrowsExactly<IOException>(() => RawSegments.Create(name));
            StringAssert.Contains(refused.Message, "another process is removing it");
            StringAssert.Contains(refused.Message, name);
        }

        // The lock released, the stale segment is recreated.
        using ShmSegment segment = RawSegments.Create(name);
        Assert.AreEqual(Environment.ProcessId, segment.Creator.Pid);
        segment.Unlink();
    }

    [TestMethod]
    public void The_stale_sweep_leaves_live_segments_alone()
    {
        using TempSegment<ShmSegment> segment = RawSegments.CreateTemp("live");
        CollectionAssert.DoesNotContain(ShmMaintenance.RemoveStaleSegments().ToList(), segment.Name);
        Assert.IsTrue(File.Exists(segment.Path));
    }
}
