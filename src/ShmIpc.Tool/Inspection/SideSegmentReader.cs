using System.Buffers.Binary;
using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// The state of a side segment (a message longer than its queue's or pipe's ring, LAYOUT.md §8), read without writing a byte.
/// </summary>
/// <param name="State"><c>writing</c> (its sender is filling it), <c>published</c> (its message waits in the host's ring),
/// <c>reading</c> (a consumer took it), <c>free</c> (read; its sender may reuse it), or <c>unknown</c>.</param>
/// <param name="Owner">Who must remove it, by State (§8.4): <c>sender</c>, <c>host</c> or <c>consumer</c>.</param>
/// <param name="Consumer">The consumer reading it, in state <c>reading</c>.</param>
/// <param name="MessageLength">Bytes of its current (or last) message.</param>
/// <param name="CapacityBytes">Its data region: the longest message it can carry.</param>
/// <param name="Retained">True while its sender keeps it for reuse.</param>
/// <param name="Host">The OS name of the queue or pipe whose records name it.</param>
/// <param name="HostExists">Whether that queue or pipe still exists.</param>
internal sealed record SideSegmentState(string State, string Owner, ProcessRef? Consumer, long MessageLength, long CapacityBytes, bool Retained,
    string Host, bool HostExists);

/// <summary>Reads a side segment's control block (<see cref="SideSegmentDescriptor"/>) through a read-only view.</summary>
internal static unsafe class SideSegmentReader
{
    public static SideSegmentState? Read(ReadOnlySegment segment, ISharedMemoryPlatform platform, out string? problem)
    {
        problem = null;
        if (segment.Header.ControlSize < SideSegmentDescriptor.ControlSize)
        {
            problem = $"a side segment's control block of {segment.Header.ControlSize} bytes, shorter than {SideSegmentDescriptor.ControlSize}";
            return null;
        }

        byte* control = segment.Control;
        ulong state = (ulong)MappedAtomics.ReadInt64Acquire(control + SideSegmentDescriptor.StateOffset);
        long length = MappedAtomics.ReadInt64Acquire(control + SideSegmentDescriptor.LengthOffset);
        bool retained = MappedAtomics.ReadInt32Acquire(control + SideSegmentDescriptor.RetainedOffset) != 0;
        var copy = new ReadOnlySpan<byte>(control, SideSegmentDescriptor.ControlSize).ToArray();
        string host = SideSegmentDescriptor.HostName(copy);
        (string name, string owner, ProcessRef? consumer) = state switch
        {
            SideSegmentDescriptor.StateWriting => ("writing", "sender", null),
            SideSegmentDescriptor.StatePublished => ("published", "host", null),
            SideSegmentDescriptor.StateFree => ("free", "sender", (ProcessRef?)null),
            _ when WordTagDescriptor.IsIdentity(state) => ("reading", "consumer", Liveness.Of(platform, ProcessIdentity.FromWord(state), 32)),
            _ => ("unknown", "sender", null),
        };
        if (name == "unknown")
        {
            problem = $"its State word 0x{state:X} is none of writing, published, free or a consumer's identity";
        }

        return new SideSegmentState(name, owner, consumer, length, (long)segment.Header.DataSize, retained, host,
            host.Length > 0 && platform.SegmentExists(host));
    }
}
