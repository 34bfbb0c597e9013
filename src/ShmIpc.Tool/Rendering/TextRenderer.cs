using System.Globalization;
using ShmIpc.Tool.Inspection;

namespace ShmIpc.Tool.Rendering;

/// <summary>The human-readable output of each command: aligned columns and whole sentences.</summary>
internal static class TextRenderer
{
    private static readonly CultureInfo s_invariant = CultureInfo.InvariantCulture;
    private static readonly string[] s_listHeadings = ["NAME", "KIND", "SIZE", "CREATOR", "OPEN", "AGE"];

    public static void List(ListReport report, TextWriter output)
    {
        if (report.Objects.Count == 0)
        {
            output.WriteLine("No ShmIpc segments or semaphores in /dev/shm.");
        }
        else
        {
            var rows = new List<string[]> { s_listHeadings };
            rows.AddRange(report.Objects.Select(o => new[]
            {
                o.Name,
                Word(o.Kind),
                Bytes(o.SizeBytes),
                o.Creator?.ToString() ?? "-",
                o.OpenBy.Count.ToString(s_invariant),
                Age(o.AgeSeconds),
            }));
            WriteTable(rows, output);
            foreach (ListEntry o in report.Objects.Where(o => o.Problem is not null))
            {
                output.WriteLine($"{o.Name}: {o.Problem}");
            }
        }

        Unreadable(report.UnreadableProcesses, output);
    }

    public static void Inspect(InspectReport report, TextWriter output)
    {
        ListEntry o = report.Object;
        output.WriteLine($"{Word(o.Kind)} {o.Name}  ({o.Path}, {Bytes(o.SizeBytes)}{(report.Flags.Count > 0 ? ", flags: " + string.Join(", ", report.Flags) : "")})");
        Field(output, "creator", o.Creator?.ToString() ?? "unknown");
        Field(output, "open by", o.OpenBy.Count == 0 ? "no process" : string.Join(", ", o.OpenBy));
        Field(output, "age", Age(o.AgeSeconds));
        Field(output, "semaphores", report.MissingSemaphores.Count == 0 ? report.Semaphores.ToString(s_invariant) : $"{report.Semaphores}, missing: {string.Join(", ", report.MissingSemaphores)}");
        if (report.Problem is not null)
        {
            Field(output, "problem", report.Problem);
        }

        if (report.Queue is { } q)
        {
            Field(output, "capacity", $"{q.Capacity} bytes, messages up to {q.MaxMessageLength} bytes");
            Field(output, "positions", $"head {q.Head}, read {q.ReadPosition}, tail {q.Tail}");
            Field(output, "depth", $"{(q.DepthIsLowerBound ? "at least " : "")}{Count(q.Depth, "message")} waiting");
            Field(output, "bytes used", $"{q.BytesUsed} of {q.Capacity}");
            Field(output, "asleep", $"{Count(q.SleepingConsumers, "consumer")}, {Count(q.SleepingProducers, "producer")}");
            Field(output, "reclaim lock", q.ReclaimLockHolder is { } holder ? $"held by {holder}" : "free");
            Field(output, "shutdown", q.Shutdown switch
            {
                "drain" => "shut down: no new messages, consumers take what is left",
                "immediate" => "shut down immediately: what is left is dropped",
                _ => "no (open)",
            });
            if (q.InFlight.Count > 0)
            {
                output.WriteLine("  in flight:");
                foreach (QueueRecord r in q.InFlight)
                {
                    string by = r.Process is null ? "" : r.Status == "reading" ? $", by consumer {r.Process}" : $", by producer {r.Process}";
                    output.WriteLine($"    position {r.Position}: {r.Status}, {r.Length} bytes{by}");
                }
            }

            if (q.Note is not null)
            {
                Field(output, "note", q.Note);
            }
        }

        if (report.SideSegment is { } side)
        {
            Field(output, "state", side.State + (side.Consumer is { } reader ? $", by consumer {reader}" : ""));
            Field(output, "owner", side.Owner switch
            {
                "host" => $"the host: its message waits in {side.Host}",
                "consumer" => "the consumer reading it",
                _ => $"its sender ({(side.Retained ? "kept for reuse" : "let go")})",
            });
            Field(output, "message", $"{side.MessageLength} bytes of {side.CapacityBytes}");
            Field(output, "host", $"{(side.Host.Length > 0 ? side.Host : "unknown")}{(side.HostExists ? "" : " (gone)")}");
        }

        if (report.Pipe is { } p)
        {
            Field(output, "capacity", $"{p.Capacity} bytes per direction, messages up to {p.MaxMessageLength} bytes, {(p.Duplex ? "duplex" : "one-way")}");
            foreach (PipeEnd end in p.Ends)
            {
                string holders = end.Holders is { } shared
                    ? $", held by {(shared.Count == 0 ? "no process" : string.Join(", ", shared))}{(end.PendingShares > 0 ? $" and {Count(end.PendingShares, "share token")} not yet redeemed" : "")}"
                    : "";
                Field(output, $"end {end.Index}", $"{end.State}{(end.Owner is { } owner ? $", pid {owner}" : "")}{holders}{(end.Index == 0 ? " (creator's end)" : " (connector's end)")}");
            }

            foreach (PipeDirection d in p.Directions)
            {
                Field(output, $"end {d.FromEnd} -> {d.ToEnd}", $"{Count(d.BacklogMessages, "message")} ({d.BacklogBytes} bytes) waiting" +
                    $"{(d.SleepingReceivers > 0 ? ", receiver asleep" : "")}{(d.SleepingSenders > 0 ? ", sender asleep (full)" : "")}" +
                    $"{(d.SendLockHolder is { } s ? $", sending: {s}" : "")}{(d.ReceiveLockHolder is { } r ? $", receiving: {r}" : "")}");
            }

            if (p.Note is not null)
            {
                Field(output, "note", p.Note);
            }
        }
    }

    public static void Doctor(DoctorReport report, TextWriter output)
    {
        foreach (DoctorEntry entry in report.Objects)
        {
            if (entry.Findings.Count == 0)
            {
                output.WriteLine($"{Word(entry.Health),-8} {Word(entry.Kind)} {entry.Name}");
            }

            foreach (string finding in entry.Findings)
            {
                output.WriteLine($"{Word(entry.Health),-8} {finding}");
            }
        }

        var counts = report.Objects.GroupBy(e => e.Health).OrderBy(g => g.Key).Select(g => $"{g.Count()} {Word(g.Key)}");
        output.WriteLine(report.Objects.Count == 0
            ? "No ShmIpc objects: nothing to examine."
            : $"{Count(report.Objects.Count, "object")}: {string.Join(", ", counts)}.");
        Unreadable(report.UnreadableProcesses, output);
    }

    public static void Clean(CleanReport report, TextWriter output)
    {
        string verb = report.DryRun ? "would remove" : "removed";
        foreach (CleanedObject removed in report.Removed)
        {
            output.WriteLine($"{verb} {Word(removed.Kind)} {removed.Name}: {removed.Reason}");
        }

        foreach (KeptObject kept in report.Kept)
        {
            output.WriteLine($"kept {kept.Name}: {kept.Reason}");
        }

        output.WriteLine(report.Removed.Count == 0
            ? "Nothing stale to remove."
            : $"{(report.DryRun ? "Would remove" : "Removed")} {Count(report.Removed.Count, "object")}{(report.DryRun ? " (dry run: nothing was removed)" : "")}.");
    }

    public static string Word(ObjectKind kind) => kind switch
    {
        ObjectKind.PoolChannel => "pool-channel",
        ObjectKind.SideSegment => "side-segment",
        _ => kind.ToString().ToLowerInvariant(),
    };

    public static string Word(Health health) => health.ToString().ToLowerInvariant();

    private static void Unreadable(IReadOnlyList<int> pids, TextWriter output)
    {
        if (pids.Count > 0)
        {
            output.WriteLine($"The maps of {Count(pids.Count, "process", "processes")} could not be read (pids {string.Join(", ", pids.Take(10))}{(pids.Count > 10 ? ", ..." : "")}): " +
                "they count as users of an object only through the use locks they hold on it.");
        }
    }

    private static void Field(TextWriter output, string label, string value) => output.WriteLine($"  {label,-14} {value}");

    private static void WriteTable(List<string[]> rows, TextWriter output)
    {
        int[] widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (string[] row in rows)
        {
            output.WriteLine(string.Join("  ", row.Select((cell, c) => c == row.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
        }
    }

    private static string Count(long n, string noun, string? plural = null) => n == 1 ? $"1 {noun}" : $"{n} {plural ?? noun + "s"}";

    internal static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.#", s_invariant) + " KiB",
        < 1024L * 1024 * 1024 => (bytes / (1024.0 * 1024)).ToString("0.#", s_invariant) + " MiB",
        _ => (bytes / (1024.0 * 1024 * 1024)).ToString("0.#", s_invariant) + " GiB",
    };

    internal static string Age(double seconds) => seconds switch
    {
        < 60 => $"{(int)seconds}s",
        < 3600 => $"{(int)(seconds / 60)}m{(int)(seconds % 60):00}s",
        < 86400 => $"{(int)(seconds / 3600)}h{(int)(seconds % 3600 / 60):00}m",
        _ => $"{(int)(seconds / 86400)}d{(int)(seconds % 86400 / 3600):00}h",
    };
}
