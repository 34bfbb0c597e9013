using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ShmIpc.Ring;

// What a ring word a peer wrote wrong is reported as: each check of SpscRing's read and refresh paths calls one of
// these out of line (the message is built only when thrown, so the checks cost a compare and a branch), and every one
// ends in a ShmCorruptionException naming the pipe, the position and what was wrong.
internal sealed unsafe partial class SpscRing
{
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadPadding(long head, int padding, long index, long toEnd, long available) =>
        ThrowCorrupted(head, $"padding record of length {padding} at index {index} must fill the {toEnd} bytes to the end and be followed by a record ({available} bytes published)");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadType(long head, int type) =>
        ThrowCorrupted(head, $"record type {type} is neither a message (1), padding (2) nor a side segment reference (3)");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadLength(long head, int length, int maxLength) =>
        ThrowCorrupted(head, $"record length {length} is outside [0, {maxLength}]");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowRecordOverrun(long head, long recordSize, long index, long available) =>
        ThrowCorrupted(head, $"record of {recordSize} bytes at index {index} runs past the tail ({available} bytes published) or the end of the ring");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadTail(long tail, long head) =>
        ThrowCorrupted(tail, $"tail {tail} is not an 8-aligned position within {_capacity} bytes ahead of head {head}");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadHead(long head, long tail) =>
        ThrowCorrupted(head, $"head {head} is not an 8-aligned position within {_capacity} bytes behind tail {tail}");

    [DoesNotReturn]
    private void ThrowCorrupted(long position, string detail) => throw new ShmCorruptionException(_name, position, detail);
}
