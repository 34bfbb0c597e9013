using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using ShmIpc.Tests.Common;
using static ShmIpc.Tool.Tests.ToolRunner;

namespace ShmIpc.Tool.Tests;

/// <summary>
/// A segment whose creator has written the header but not yet its magic (LAYOUT.md §3, "Creating"): being made
/// while the creator lives, left behind when it died there. The header is written here from the spec's table.
/// </summary>
[TestClass]
public sealed class UnpublishedSegmentTests
{
    [TestMethod]
    public void A_segment_being_made_is_healthy_and_one_whose_creator_died_making_it_is_stale()
    {
        string name = TestNames.Unique("unpub");
        string path = $"/dev/shm/shmipc.{name}";
        ulong myStart = StartTimeOf(Environment.ProcessId);
        try
        {
            File.WriteAllBytes(path, UnpublishedQueueHeader(Environment.ProcessId, myStart));
            JsonElement entry = ObjectNamed(Json("list"), name);
            Assert.AreEqual("queue", entry.GetProperty("kind").GetString(), "the kind is known before the magic");
            Assert.AreEqual($"its creator, pid {Environment.ProcessId}, is still making it (the header is not published yet)", entry.GetProperty("problem").GetString());
            JsonElement verdict = ObjectNamed(Json("doctor", name), name);
            Assert.AreEqual("ok", verdict.GetProperty("health").GetString(), "its semaphores are not made yet either: nothing is wrong");
            Assert.AreEqual(0, Json("clean", "--dry-run", name).GetProperty("removed").GetArrayLength(), "a live creator's segment is never stale");

            // Same pid, another start time: the process that made it is gone (the pid may live on in another).
            File.WriteAllBytes(path, UnpublishedQueueHeader(Environment.ProcessId, myStart + 1));
            StringAssert.Contains(Json("inspect", name).GetProperty("problem").GetString(), "died before it published the header");
            verdict = ObjectNamed(Json("doctor", name), name);
            Assert.AreEqual("stale", verdict.GetProperty("health").GetString());
            Assert.AreEqual(name, Json("clean", name).GetProperty("removed")[0].GetProperty("name").GetString());
            Assert.IsFalse(File.Exists(path), "clean removed it");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>A queue's header (4096-byte ring) with everything but the magic, as LAYOUT.md §3 lays it out.</summary>
    private static byte[] UnpublishedQueueHeader(int creatorPid, ulong creatorStart)
    {
        const int ControlSize = 768, DataSize = 4096, Total = 128 + ControlSize + DataSize;
        byte[] file = new byte[Total];
        Span<byte> h = file;
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], 2);            // LayoutVersion (2 since the queue's Shutdown word)
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 1);           // Kind: Queue
        BinaryPrimitives.WriteUInt64LittleEndian(h[16..], Total);       // TotalSize
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], 128);         // HeaderSize
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], 128);         // ControlOffset
        BinaryPrimitives.WriteUInt64LittleEndian(h[40..], ControlSize);
        BinaryPrimitives.WriteUInt64LittleEndian(h[48..], 128 + ControlSize);
        BinaryPrimitives.WriteUInt64LittleEndian(h[56..], DataSize);
        BinaryPrimitives.WriteInt32LittleEndian(h[64..], creatorPid);
        BinaryPrimitives.WriteUInt32LittleEndian(h[68..], 2);           // SemaphoreCount
        BinaryPrimitives.WriteUInt64LittleEndian(h[72..], creatorStart);
        ulong hash = 0xcbf2_9ce4_8422_2325;                             // FNV-1a 64 over bytes 8..119
        foreach (byte b in file.AsSpan(8, 112))
        {
            hash = (hash ^ b) * 0x0000_0100_0000_01B3;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(h[120..], hash);
        return file;
    }

    /// <summary>Field 22 of /proc/PID/stat, counted after the last ')' (LAYOUT.md §2).</summary>
    private static ulong StartTimeOf(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return ulong.Parse(fields[22 - 3], CultureInfo.InvariantCulture);
    }
}
