using System.Globalization;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// Judges each object the inspector read: healthy, or not and why, in one sentence a person on call can act on.
/// The judgements follow what ShmIpc itself does about each state (LAYOUT.md §3.1, §5.6, §6.6), so a sentence
/// also says who repairs it.
/// </summary>
internal static class Doctor
{
    /// <summary>Examines every object (or those named in <paramref name="names"/>).</summary>
    public static DoctorReport Examine(ShmInspector inspector, IReadOnlyCollection<string>? names = null)
    {
        (IReadOnlyList<InspectReport> segments, IReadOnlyList<ListEntry> semaphores, IReadOnlyList<int> unreadable) = inspector.ReadAll(names);
        var entries = new List<DoctorEntry>(segments.Count + semaphores.Count);
        entries.AddRange(segments.Select(Diagnose));
        // A segment's semaphores are judged with it (a missing one is its finding); only orphans get a line of their own.
        entries.AddRange(semaphores.Where(s => s.Problem is not null).Select(DiagnoseSemaphore));
        return new DoctorReport(entries.All(e => e.Health == Health.Ok), entries, unreadable);
    }

    /// <summary>The verdict on one segment.</summary>
    public static DoctorEntry Diagnose(InspectReport report)
    {
        ListEntry o = report.Object;
        var findings = new List<(Health Health, string Sentence)>();
        string what = $"{Noun(o.Kind)} {o.Name}";

        if (report.SideSegment is { } side)
        {
            DiagnoseSide(o, side, findings); // its owner follows its State, not its creator (LAYOUT.md §8.4)
        }
        else if (o.Creator is { Alive: false } creator && o.OpenBy.Count == 0)
        {
            string who = report.Flags.Contains("keep")
                ? " (its creator asked to keep it, so nothing else removes it)"
                : " (so does the next ShmIpc process that creates or opens anything)";
            findings.Add((Health.Stale, $"segment shmipc.{o.Name}: no process has it open and its creator, pid {creator.Pid}, is dead: stale, `shmipc clean` removes it{who}"));
        }
        else if (!report.Published && o.Creator is { Alive: true })
        {
            // Being made right now: an opener waits for it (LAYOUT.md §3, "Opening"). Nothing is wrong.
        }
        else if (report.Problem is not null && report.Queue is null && report.Pipe is null)
        {
            findings.Add((Health.Broken, $"segment shmipc.{o.Name}: {report.Problem}; shmipc cannot read it, and `shmipc clean` removes it only once its creator is dead and nobody has it open"));
        }

        if (report.MissingSemaphores.Count > 0 && report.Published) // a creator makes them before it publishes
        {
            findings.Add((Health.Broken, $"{what}: its semaphore{(report.MissingSemaphores.Count > 1 ? "s" : "")} {string.Join(", ", report.MissingSemaphores)} " +
                "are gone (removed by hand?): processes that have it open go on, but a new Open fails"));
        }

        if (report.Queue is { } queue)
        {
            DiagnoseQueue(what, queue, findings);
        }

        if (report.Pipe is { } pipe)
        {
            DiagnosePipe(what, pipe, findings);
        }

        Health health = findings.Count == 0 ? Health.Ok : findings.Max(f => f.Health);
        return new DoctorEntry(o.Name, o.Kind, health, findings.Select(f => f.Sentence).ToList());
    }

    /// <summary>A side segment is stale when nobody maps it and its owner by State is gone: the sweep's rule (SideSegmentDescriptor.StaleReason).</summary>
    private static void DiagnoseSide(ListEntry o, SideSegmentState side, List<(Health, string)> findings)
    {
        string? gone = side.State switch
        {
            "published" when !side.HostExists => $"its message was queued in {side.Host}, which is gone",
            "reading" when side.Consumer is { Alive: false } consumer => $"the consumer reading it, pid {consumer.Pid}, is dead",
            "writing" or "free" or "unknown" when o.Creator is { Alive: false } sender => $"its sender, pid {sender.Pid}, is dead",
            _ => null,
        };
        if (gone is not null && o.OpenBy.Count == 0)
        {
            findings.Add((Health.Stale, $"side segment shmipc.{o.Name}: no process has it open and {gone}: stale, `shmipc clean` removes it " +
                "(so does the next ShmIpc process that creates or opens anything)"));
        }
    }

    private static void DiagnoseQueue(string what, QueueState queue, List<(Health, string)> findings)
    {
        foreach (QueueRecord record in queue.InFlight)
        {
            if (record.Process is not { Alive: false } dead)
            {
                continue; // a live producer still writing, a live consumer still reading: nothing wrong
            }

            string position = record.Position.ToString(CultureInfo.InvariantCulture);
            switch (record.Status)
            {
                case "claimed":
                    findings.Add((Health.Warning, $"{what}: producer {dead.Pid} died while writing position {position}; " +
                        "the next consumer marks it abandoned and skips it (that one message is lost)"));
                    break;
                case "reading":
                    findings.Add((Health.Warning, $"{what}: consumer {dead.Pid} died while reading position {position}; " +
                        "that message is lost, the next consumers skip it and a producer that needs its space releases it"));
                    break;
            }
        }

        if (queue.ReclaimLockHolder is { Alive: false } holder)
        {
            findings.Add((Health.Warning, $"{what}: process {holder.Pid} died while reclaiming space (it still holds the reclaim lock); " +
                "the next producer that needs space breaks the lock and reclaims"));
        }

        if (queue.Note is { } note && note.Contains("not one the layout allows", StringComparison.Ordinal))
        {
            findings.Add((Health.Broken, $"{what}: {note}: the queue is damaged, its consumers will report it corrupt"));
        }
    }

    private static void DiagnosePipe(string what, PipeState pipe, List<(Health, string)> findings)
    {
        foreach (PipeEnd end in pipe.Ends)
        {
            // Gone as its peer will judge it (LAYOUT.md §5.6, §5.7): an exclusive end's owner dead, or every holder of a
            // shared end dead with no share token still to be redeemed, and in both cases never closed.
            string who;
            if (end.State == "open" && end.Owner is { Alive: false } dead)
            {
                who = $"the process at end {end.Index}, pid {dead.Pid}, died without closing it";
            }
            else if (end.State == "shared" && end.PendingShares == 0 && end.Holders is { Count: > 0 } holders && holders.All(h => !h.Alive))
            {
                who = $"the processes sharing end {end.Index} (pids {string.Join(", ", holders.Select(h => h.Pid))}) all died without closing it";
            }
            else
            {
                continue;
            }

            int other = 1 - end.Index;
            // What the dead end sent is on ring `other`; what was sent to it is on ring `end.Index`.
            PipeDirection? fromDead = pipe.Directions.FirstOrDefault(d => d.Ring == other);
            PipeDirection? toDead = pipe.Directions.FirstOrDefault(d => d.Ring == end.Index);
            string left = fromDead is { BacklogMessages: > 0 } f ? $"reads the {Count(f.BacklogMessages, "message")} it left, then " : "";
            string lost = toDead is { BacklogMessages: > 0 } t ? $"; the {Count(t.BacklogMessages, "message")} sent to it are lost" : "";
            findings.Add((Health.Warning, $"{what}: {who}; end {other} {left}sees the end of the stream{lost}"));
        }

        foreach (PipeDirection direction in pipe.Directions)
        {
            if (direction.SendLockHolder is { Alive: false } sender)
            {
                findings.Add((Health.Warning, $"{what}: sender {sender.Pid} died holding the send lock of shared end {direction.FromEnd}; " +
                    "the next sender proves it dead and takes the lock over (what it had not published is dropped)"));
            }

            if (direction.ReceiveLockHolder is { Alive: false } receiver)
            {
                findings.Add((Health.Warning, $"{what}: receiver {receiver.Pid} died holding the receive lock of shared end {direction.ToEnd}; " +
                    "the next receiver takes the lock over and receives the message it held again"));
            }
        }

        if (pipe.Note is { } note)
        {
            findings.Add((Health.Warning, $"{what}: {note}"));
        }
    }

    private static DoctorEntry DiagnoseSemaphore(ListEntry semaphore) =>
        new(semaphore.Name, ObjectKind.Semaphore, Health.Stale, [$"semaphore shmipc.{semaphore.Name}: {semaphore.Problem}: an orphan, `shmipc clean` removes it"]);

    private static string Noun(ObjectKind kind) => kind switch
    {
        ObjectKind.Queue => "queue",
        ObjectKind.Pipe => "pipe",
        ObjectKind.PoolChannel => "pool channel",
        ObjectKind.Raw => "raw segment",
        ObjectKind.Semaphore => "semaphore",
        ObjectKind.SideSegment => "side segment",
        _ => "segment",
    };

    private static string Count(long n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";
}
