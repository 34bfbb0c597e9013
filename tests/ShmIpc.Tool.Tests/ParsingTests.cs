using ShmIpc.Tool.Inspection;
using ShmIpc.Tool.Rendering;

namespace ShmIpc.Tool.Tests;

[TestClass]
public sealed class ParsingTests
{
    [TestMethod]
    public void A_maps_line_gives_the_device_and_inode_of_the_mapped_file()
    {
        Assert.IsTrue(ProcessTable.TryParseMapsLine("7f1c2a000000-7f1c2a011000 rw-s 00000000 00:1a 4711                       /dev/shm/shmipc.jobs", out var key));
        Assert.AreEqual(new ProcessTable.FileKey(0, 0x1a, 4711), key);
        Assert.IsTrue(ProcessTable.TryParseMapsLine("7f1c2a000000-7f1c2a011000 rw-s 00000000 fd:01 99 /dev/shm/shmipc.x (deleted)", out key));
        Assert.AreEqual(new ProcessTable.FileKey(0xfd, 1, 99), key);
        Assert.IsFalse(ProcessTable.TryParseMapsLine("7f1c2a000000-7f1c2a011000 rw-p 00000000 00:00 0", out _), "an anonymous mapping names no file");
    }

    [TestMethod]
    public void A_locks_line_gives_the_holder_and_the_file_and_a_waiter_is_not_a_holder()
    {
        Assert.IsTrue(ProcessTable.TryParseLocksLine("3: FLOCK  ADVISORY  READ  4711 00:1a:12345 0 EOF", out var key, out int pid));
        Assert.AreEqual(4711, pid);
        Assert.AreEqual(new ProcessTable.FileKey(0, 0x1a, 12345), key);
        Assert.IsFalse(ProcessTable.TryParseLocksLine("3: -> FLOCK  ADVISORY  WRITE 4712 00:1a:12345 0 EOF", out _, out _));
    }

    [TestMethod]
    public void Names_are_accepted_as_given_to_Create_as_file_names_or_as_paths()
    {
        Assert.AreEqual("shmipc.jobs", ShmFiles.ToOsName("jobs"));
        Assert.AreEqual("shmipc.jobs", ShmFiles.ToOsName("shmipc.jobs"));
        Assert.AreEqual("shmipc.jobs", ShmFiles.ToOsName("/dev/shm/shmipc.jobs"));
        Assert.AreEqual("shmipc.jobs", ShmFiles.SegmentOfSemaphore("shmipc.jobs.s1"));
        Assert.AreEqual("shmipc.a.sb", ShmFiles.SegmentOfSemaphore("shmipc.a.sb.s0"));
        Assert.IsNull(ShmFiles.SegmentOfSemaphore("shmipc.jobs.sx"));
    }

    [TestMethod]
    public void Sizes_and_ages_read_as_people_write_them()
    {
        Assert.AreEqual("512 B", TextRenderer.Bytes(512));
        Assert.AreEqual("65.1 KiB", TextRenderer.Bytes(66_688));
        Assert.AreEqual("1 GiB", TextRenderer.Bytes(1L << 30));
        Assert.AreEqual("42s", TextRenderer.Age(42.9));
        Assert.AreEqual("2m05s", TextRenderer.Age(125));
        Assert.AreEqual("3h00m", TextRenderer.Age(3 * 3600 + 30));
    }
}
