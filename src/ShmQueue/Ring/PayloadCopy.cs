using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ShmIpc.Ring;

/// <summary>
/// Copies a message's payload into or out of a ring when the caller has already checked its length (the producer
/// against MaxMessageLength, the consumer against the record it validated and the buffer it was given): no span over
/// the destination to build and check again.
/// </summary>
/// <remarks>
/// Why not <c>source.CopyTo(new Span(destination, length))</c>: in the ReadyToRun image the span constructor, CopyTo and
/// Buffer.Memmove are three calls into CoreLib for what is, for the small messages pipes and queues mostly carry, eight
/// 8-byte moves. Payloads of 16 to 64 bytes are copied inline with 8-byte loads and stores from both ends (overlapping in
/// the middle, every access inside [0, length)); the rest go to the runtime's memmove. (Vector128 loads and stores, tried
/// first, read 780 instead of 635 managed instructions per pipe message under bench/instructions.sh: in the ReadyToRun
/// image they did not become single instructions.) Bytes in shared memory may be changed by a
/// misbehaving peer during the copy: the copy then carries torn bytes, never reads or writes outside the range.
/// </remarks>
internal static unsafe class PayloadCopy
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(byte* destination, ReadOnlySpan<byte> source)
    {
        ref byte from = ref MemoryMarshal.GetReference(source);
        nuint length = (uint)source.Length;
        if (length - 16 <= 48)
        {
            // 16 <= length <= 64: 8-byte moves from both ends (the middle ones overlapping when length is not 32 or 64).
            ulong a = Unsafe.ReadUnaligned<ulong>(ref from);
            ulong b = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, 8));
            ulong y = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, length - 16));
            ulong z = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, length - 8));
            if (length > 32)
            {
                ulong c = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, 16));
                ulong d = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, 24));
                ulong w = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, length - 32));
                ulong x = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, length - 24));
                Unsafe.WriteUnaligned(destination + 16, c);
                Unsafe.WriteUnaligned(destination + 24, d);
                Unsafe.WriteUnaligned(destination + length - 32, w);
                Unsafe.WriteUnaligned(destination + length - 24, x);
            }

            Unsafe.WriteUnaligned(destination, a);
            Unsafe.WriteUnaligned(destination + 8, b);
            Unsafe.WriteUnaligned(destination + length - 16, y);
            Unsafe.WriteUnaligned(destination + length - 8, z);
            return;
        }

        Unsafe.CopyBlockUnaligned(ref *destination, ref from, (uint)length);
    }
}
