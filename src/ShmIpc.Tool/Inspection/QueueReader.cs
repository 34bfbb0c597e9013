using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// Reads a queue's state (LAYOUT.md §6) through <see cref="QueueDescriptor"/>: the counters, the sleepers, the
/// reclaim lock, and a walk over the records between Head and Tail that finds what is in flight and by whom.
/// </summary>
/// <remarks>
/// A snapshot of a live queue: producers and consumers move on while it is read. The counters are loaded in
/// the order they may pass each other (Head, ReadPosition, Tail, as the descriptor's validation does), and each
/// record is read as a consumer reads it (State, then Claim, both acquire). A record that no longer carries its
/// position's tag has been reclaimed since: the walk stops there and says so. Reads only.
/// </remarks>
internal static unsafe class QueueReader
{
    /// <summary>Records walked at most (a deep queue of small messages is counted up to here, then "at least").</summary>
    public const int MaxRecordsWalked = 1_000_000;

    /// <summary>The state of the queue in <paramref name="segment"/>, or null with the reason when its control block does not validate.</summary>
    public static QueueState? Read(ReadOnlySegment segment, ISharedMemoryPlatform platform, out string? problem)
    {
        SegmentHeaderDescriptor.Fields h = segment.Header;
        byte* control = segment.Control;
        problem = QueueDescriptor.Validate(control, (long)h.ControlSize, (long)h.DataSize, (int)h.SemaphoreCount);
        if (problem is not null)
        {
            return null;
        }

        long capacity = *(long*)(control + QueueDescriptor.CapacityOffset);
        int maxLength = *(int*)(control + QueueDescriptor.MaxMessageLengthOffset);
        long head = MappedAtomics.ReadInt64Acquire(control + QueueDescriptor.HeadOffset);
        long read = MappedAtomics.ReadInt64Acquire(control + QueueDescriptor.ReadPositionOffset);
        long tail = MappedAtomics.ReadInt64Acquire(control + QueueDescriptor.TailOffset);
        ulong lockWord = (ulong)MappedAtomics.ReadInt64Acquire(control + QueueDescriptor.ReclaimLockOffset);
        int dataSleepers = MappedAtomics.ReadInt32Acquire(control + QueueDescriptor.DataSleepersOffset);
        int spaceSleepers = MappedAtomics.ReadInt32Acquire(control + QueueDescriptor.SpaceSleepersOffset);
        string shutdown = MappedAtomics.ReadInt32Acquire(control + QueueDescriptor.ShutdownOffset) switch
        {
            QueueDescriptor.ShutdownNone => "open",
            QueueDescriptor.ShutdownDrain => "drain",
            _ => "immediate", // validated to be 0, 1 or 2 above; the word only grows
        };

        if (head > read || read > tail || tail - head > capacity)
        {
            problem = $"positions out of order: head {head}, read {read}, tail {tail}, capacity {capacity}";
            return null;
        }

        ProcessRef? lockHolder = ProcessIdentity.IsIdentityWord(lockWord) ? Liveness.Of(platform, ProcessIdentity.FromWord(lockWord), 32) : null;
        var inFlight = new List<QueueRecord>();
        Walk walk = WalkRecords(segment.Data, capacity, maxLength, head, read, tail, control, platform, inFlight);
        return new QueueState(capacity, maxLength, head, read, tail, walk.Depth, walk.Note is not null, tail - head,
            Math.Max(dataSleepers, 0), Math.Max(spaceSleepers, 0), lockHolder, inFlight, walk.Note, shutdown);
    }

    private readonly record struct Walk(long Depth, string? Note);

    private static Walk WalkRecords(byte* data, long capacity, int maxLength, long head, long read, long tail, byte* control,
        ISharedMemoryPlatform platform, List<QueueRecord> inFlight)
    {
        long mask = capacity - 1;
        long depth = 0;
        long position = head;
        for (int walked = 0; ; walked++)
        {
            if (walked >= MaxRecordsWalked)
            {
                return new Walk(depth, $"stopped after {MaxRecordsWalked} records");
            }

            byte* record = data + (position & mask);
            ulong state = (ulong)MappedAtomics.ReadInt64Acquire(record + QueueDescriptor.StateOffset);
            ulong claim = (ulong)MappedAtomics.ReadInt64Acquire(record + QueueDescriptor.ClaimOffset);
            long toEnd = capacity - (position & mask);
            bool atTail = position >= tail;
            if (claim == QueueDescriptor.FreeStamp(position) || claim == QueueDescriptor.FreeStamp(position + capacity))
            {
                // Free for this lap (the end of the records) or already for the next (reclaimed under us).
                return atTail ? new Walk(depth, null) : Moved(control, head, depth, position);
            }

            if ((state >> 32) != QueueDescriptor.PositionTag(position)
                || !QueueDescriptor.TryDecodeClaim(claim, toEnd, maxLength, out uint kind, out int length, out long size))
            {
                // At Tail, bytes that are not a claim are simply not one yet; before it, the queue moved or is damaged.
                return atTail ? new Walk(depth, null) : Moved(control, head, depth, position);
            }

            if (kind != QueueDescriptor.KindPadding)
            {
                uint status = (uint)state;
                if (position >= read && status is QueueDescriptor.StateWriting or QueueDescriptor.StateCommitted)
                {
                    depth++;
                }

                QueueRecord? item = status switch
                {
                    QueueDescriptor.StateWriting => new QueueRecord(position, "claimed", length, Producer(record, claim, platform)),
                    QueueDescriptor.StateCommitted when position < read => new QueueRecord(position, "reading", length, Reader(record, position, platform)),
                    QueueDescriptor.StateAbandoned => new QueueRecord(position, "abandoned", length, Producer(record, claim, platform)),
                    _ => null,
                };
                if (item is not null)
                {
                    inFlight.Add(item);
                }
            }

            // A claim found at Tail is one whose producer has not moved Tail past it yet (LAYOUT.md §6.6): counted, then the end.
            if (atTail)
            {
                return new Walk(depth, null);
            }

            position += size;
        }
    }

    private static Walk Moved(byte* control, long head, long depth, long position) =>
        MappedAtomics.ReadInt64Acquire(control + QueueDescriptor.HeadOffset) != head
            ? new Walk(depth, $"the queue moved on while it was read (at position {position}); run inspect again for a fresh picture")
            : new Walk(depth, $"the record at position {position} is not one the layout allows");

    /// <summary>The producer a claim names: by its identity word when it has stored one for this claim's pid, else by the pid alone (LAYOUT.md §6.6).</summary>
    private static ProcessRef Producer(byte* record, ulong claim, ISharedMemoryPlatform platform)
    {
        ulong word = (ulong)MappedAtomics.ReadInt64Acquire(record + QueueDescriptor.ProducerIdentityOffset);
        int pid = QueueDescriptor.PidOf(claim);
        return ProcessIdentity.IsIdentityWord(word) && ProcessIdentity.FromWord(word).Pid == pid
            ? Liveness.Of(platform, ProcessIdentity.FromWord(word), 32)
            : Liveness.Of(platform, new ProcessIdentity(pid, 0), 0);
    }

    private static ProcessRef? Reader(byte* record, long position, ISharedMemoryPlatform platform)
    {
        ulong word = (ulong)MappedAtomics.ReadInt64Acquire(record + QueueDescriptor.ReaderOffset);
        return word != QueueDescriptor.FreeStamp(position) && ProcessIdentity.IsIdentityWord(word)
            ? Liveness.Of(platform, ProcessIdentity.FromWord(word), 32)
            : null;
    }
}
