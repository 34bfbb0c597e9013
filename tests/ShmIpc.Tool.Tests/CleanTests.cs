using System.Text.Json;
using ShmIpc.Tests.Common;
using static ShmIpc.Tool.Tests.ToolRunner;

namespace ShmIpc.Tool.Tests;

/// <summary>
/// Stale segments: made by a child that is then killed. The child asks to keep its queue (UnlinkOnDispose = false),
/// so the automatic sweep of any ShmIpc process leaves it to `shmipc clean`. The clean runs are narrowed to this
/// test's names: the suite's other assemblies run at the same time and have stale segments of their own to check.
/// </summary>
[TestClass]
public sealed class CleanTests
{
    [TestMethod]
    public void Doctor_calls_a_dead_creators_unused_segment_stale_and_clean_removes_it_but_never_while_a_live_process_has_it_open()
    {
        string stale = TestNames.Unique("cstale");
        string live = TestNames.Unique("clive");
        try
        {
            using ShmQueue liveQueue = ShmQueue.Create(live);
            int creator = MakeStale(stale);

            (int code, string text, _) = Run("doctor", stale, live);
            Assert.AreEqual(1, code);
            StringAssert.Contains(text, $"stale    segment shmipc.{stale}: no process has it open and its creator, pid {creator}, is dead");
            StringAssert.Contains(text, $"ok       queue {live}");
            JsonElement doctor = Json("doctor", stale, live);
            Assert.AreEqual("stale", ObjectNamed(doctor, stale).GetProperty("health").GetString());
            Assert.AreEqual("ok", ObjectNamed(doctor, live).GetProperty("health").GetString());
            Assert.IsFalse(doctor.GetProperty("healthy").GetBoolean());

            // A dry run names it and removes nothing.
            JsonElement dry = Json("clean", "--dry-run", stale, live);
            Assert.IsTrue(dry.GetProperty("dryRun").GetBoolean());
            Assert.AreEqual(stale, dry.GetProperty("removed").EnumerateArray().Single().GetProperty("name").GetString());
            Assert.AreEqual("queue", dry.GetProperty("removed")[0].GetProperty("kind").GetString());
            StringAssert.Contains(Run("clean", "--dry-run", stale).Output, $"would remove queue {stale}");
            Assert.AreEqual(3, TestNames.ShmFilesOf(stale).Length, "segment and both semaphores are still there");

            // Opened by a live process (this one), the dead creator's queue is not stale: clean keeps it.
            using (ShmQueue opened = ShmQueue.Open(stale))
            {
                Assert.AreEqual("ok", ObjectNamed(Json("doctor", stale), stale).GetProperty("health").GetString());
                JsonElement kept = Json("clean", stale, live);
                Assert.AreEqual(0, kept.GetProperty("removed").GetArrayLength());
                StringAssert.Contains(kept.GetProperty("kept").EnumerateArray().Single(k => k.GetProperty("name").GetString() == stale).GetProperty("reason").GetString(),
                    "another process still maps it");
                Assert.AreEqual(3, TestNames.ShmFilesOf(stale).Length);
            }

            // Closed again: now clean removes it, segment and semaphores, and still not the live queue.
            (code, text, _) = Run("clean", stale, live);
            Assert.AreEqual(0, code);
            StringAssert.Contains(text, $"removed queue {stale}: its creator is dead and no process has it open");
            StringAssert.Contains(text, $"kept {live}: its creator, pid {Environment.ProcessId}, is running");
            Assert.AreEqual(0, TestNames.ShmFilesOf(stale).Length, "nothing of it is left in /dev/shm");
            Assert.AreEqual(3, TestNames.ShmFilesOf(live).Length, "the live queue is untouched");
            liveQueue.Enqueue([5]);
            CollectionAssert.AreEqual(new byte[] { 5 }, liveQueue.Dequeue(TimeSpan.FromSeconds(5)));
        }
        finally
        {
            ShmMaintenance.Unlink(stale);
        }
    }

    [TestMethod]
    public void Clean_removes_an_orphan_semaphore_whose_segment_is_gone()
    {
        string name = TestNames.Unique("corphan");
        try
        {
            MakeStale(name);
            File.Delete($"/dev/shm/shmipc.{name}"); // what a hand-made `rm` leaves: the semaphores

            JsonElement list = Json("list");
            Assert.AreEqual("its segment does not exist", ObjectNamed(list, name + ".s0").GetProperty("problem").GetString());
            StringAssert.Contains(Run("doctor", name).Output, $"semaphore shmipc.{name}.s0: its segment does not exist: an orphan, `shmipc clean` removes it");

            JsonElement cleaned = Json("clean", name);
            CollectionAssert.AreEquivalent(new[] { name + ".s0", name + ".s1" },
                cleaned.GetProperty("removed").EnumerateArray().Select(r => r.GetProperty("name").GetString()).ToArray());
            Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
        }
        finally
        {
            ShmMaintenance.Unlink(name);
        }
    }

    [TestMethod]
    public void A_file_that_is_not_a_ShmIpc_segment_is_reported_broken_and_never_removed()
    {
        string name = TestNames.Unique("cforeign");
        string path = $"/dev/shm/shmipc.{name}";
        try
        {
            File.WriteAllBytes(path, Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray());

            JsonElement entry = ObjectNamed(Json("list"), name);
            Assert.AreEqual("unknown", entry.GetProperty("kind").GetString());
            StringAssert.Contains(entry.GetProperty("problem").GetString(), "is not ShmIpc's");

            JsonElement verdict = ObjectNamed(Json("doctor", name), name);
            Assert.AreEqual("broken", verdict.GetProperty("health").GetString());
            Assert.AreEqual(1, Json(out int inspectCode, "inspect", name).GetProperty("problem").GetString()!.Length > 0 ? inspectCode : -1, "inspect exits 1 on a segment it cannot read");

            JsonElement cleaned = Json("clean", name);
            Assert.AreEqual(0, cleaned.GetProperty("removed").GetArrayLength());
            StringAssert.Contains(cleaned.GetProperty("kept")[0].GetProperty("reason").GetString(), "not ours to remove");
            Assert.IsTrue(File.Exists(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>A queue whose creator was killed and that nobody maps; returns the creator's pid.</summary>
    private static int MakeStale(string name) => ChildProcess.StartReadyThenKill9("queue-create-keep", name);
}
