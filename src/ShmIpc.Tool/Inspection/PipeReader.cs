using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// Reads a pipe's state (LAYOUT.md §5) through <see cref="PipeDescriptor"/> and <see cref="SpscRingDescriptor"/>:
/// who holds each end and whether it is closed, and each direction's backlog. Reads only.
/// </summary>
internal static unsafe class PipeReader
{
    /// <summary>The state of the pipe in <paramref name="segment"/>, or null with the reason when its control block does not validate.</summary>
    public static PipeState? Read(ReadOnlySegment segment, ISharedMemoryPlatform platform, out string? problem)
    {
        SegmentHeaderDescriptor.Fields h = segment.Header;
        byte* control = segment.Control;
        problem = PipeDescriptor.Validate(control, (long)h.ControlSize, (long)h.DataSize, (int)h.SemaphoreCount, out _);
        if (problem is not null)
        {
            return null;
        }

        int capacity = (int)*(long*)(control + PipeDescriptor.CapacityOffset);
        int maxLength = (int)*(long*)(control + PipeDescriptor.MaxMessageLengthOffset);
        int rings = *(int*)(control + PipeDescriptor.RingCountOffset);

        var ends = new List<PipeEnd>(2);
        for (int end = PipeDescriptor.CreatorEnd; end <= PipeDescriptor.ConnectorEnd; end++)
        {
            byte* slot = control + PipeDescriptor.EndSlotOffset(end);
            ulong owner = (ulong)MappedAtomics.ReadInt64Acquire(slot + PipeDescriptor.OwnerOffset);
            bool closed = MappedAtomics.ReadInt64Acquire(slot + PipeDescriptor.ClosedOffset) != 0;
            ProcessRef? process = ProcessIdentity.IsIdentityWord(owner) ? Liveness.Of(platform, ProcessIdentity.FromWord(owner), 32) : null;
            List<ProcessRef>? holders = null;
            int pending = 0;
            if (owner == PipeDescriptor.SharedOwnerWord)
            {
                holders = [];
                for (int i = 0; i < PipeDescriptor.MaxHolders; i++)
                {
                    ulong word = (ulong)MappedAtomics.ReadInt64Acquire(PipeDescriptor.Holder(slot, i));
                    if (ProcessIdentity.IsIdentityWord(word))
                    {
                        holders.Add(Liveness.Of(platform, ProcessIdentity.FromWord(word), 32));
                    }
                    else if (PipeDescriptor.IsHandoverWord(word))
                    {
                        pending++;
                    }
                }
            }

            string state = closed ? "closed"
                : owner == PipeDescriptor.SharedOwnerWord ? "shared"
                : PipeDescriptor.IsHandoverWord(owner) ? "handed over"
                : owner == 0 ? "not connected"
                : "open";
            ends.Add(new PipeEnd(end, state, process, holders, pending));
        }

        var directions = new List<PipeDirection>(rings);
        string? note = null;
        for (int ring = 0; ring < rings; ring++)
        {
            byte* ringControl = control + PipeDescriptor.RingControlOffset(ring);
            long head = MappedAtomics.ReadInt64Acquire(ringControl + SpscRingDescriptor.HeadOffset);
            long tail = MappedAtomics.ReadInt64Acquire(ringControl + SpscRingDescriptor.TailOffset);
            int dataSleepers = MappedAtomics.ReadInt32Acquire(ringControl + SpscRingDescriptor.DataSleepersOffset);
            int spaceSleepers = MappedAtomics.ReadInt32Acquire(ringControl + SpscRingDescriptor.SpaceSleepersOffset);
            ProcessRef? sendLock = LockHolder(ringControl + SpscRingDescriptor.SendLockOffset, platform);
            ProcessRef? receiveLock = LockHolder(ringControl + SpscRingDescriptor.ReceiveLockOffset, platform);
            long messages = CountMessages(segment.Data + PipeDescriptor.RingDataOffset(ring, capacity), capacity, maxLength, head, tail, out string? ringNote);
            note ??= ringNote is null ? null : $"ring {ring}: {ringNote}";
            // Ring r carries end (1 - r)'s messages to end r.
            directions.Add(new PipeDirection(ring, 1 - ring, ring, Math.Max(tail - head, 0), messages, Math.Max(dataSleepers, 0), Math.Max(spaceSleepers, 0),
                sendLock, receiveLock));
        }

        return new PipeState(capacity, maxLength, rings == 2, ends, directions, note);
    }

    /// <summary>The process a shared end's send or receive lock names (LAYOUT.md §5.7); null when free (or not an identity word).</summary>
    private static ProcessRef? LockHolder(byte* word, ISharedMemoryPlatform platform)
    {
        ulong value = (ulong)MappedAtomics.ReadInt64Acquire(word);
        return ProcessIdentity.IsIdentityWord(value) ? Liveness.Of(platform, ProcessIdentity.FromWord(value), 32) : null;
    }

    /// <summary>Counts the message records in [head, tail), as a consumer would step over them (LAYOUT.md §5.5), checking each.</summary>
    private static long CountMessages(byte* ring, int capacity, int maxLength, long head, long tail, out string? note)
    {
        note = null;
        long mask = capacity - 1;
        long count = 0;
        long position = head;
        while (position < tail)
        {
            long index = position & mask;
            long available = tail - position;
            int length = *(int*)(ring + index + SpscRingDescriptor.LengthOffset);
            int type = *(int*)(ring + index + SpscRingDescriptor.TypeOffset);
            long toEnd = capacity - index;
            long size;
            if (type == SpscRingDescriptor.PaddingType && length == toEnd - SpscRingDescriptor.RecordHeaderLength && available > toEnd)
            {
                size = toEnd;
            }
            else if (type == SpscRingDescriptor.MessageType && length >= 0 && length <= maxLength
                && SpscRingDescriptor.RecordSize(length) <= Math.Min(available, toEnd))
            {
                size = SpscRingDescriptor.RecordSize(length);
                count++;
            }
            else
            {
                // The consumer received it (and the producer reused the bytes) while we looked, or it is damaged.
                note = $"the record at position {position} could not be read; the count stops there";
                return count;
            }

            position += size;
        }

        return count;
    }
}
