namespace ShmIpc.Layout;

/// <summary>
/// The control blocks of the plain data kinds: SharedMemory, Array, Value and Counter. See native-notes/LAYOUT.md §7.1-§7.2.
/// <para>SharedMemory (control 128 bytes, no semaphore; the data region is the block, DataSize = Size):</para>
/// <code>
///  offset  size  field        writer          readers
///  0       8     Size         creator, once   all (validated: equals DataSize)
/// </code>
/// <para>Array and Value (control 256 bytes, one semaphore s0 for the lock; data = Length elements):</para>
/// <code>
///  offset  size  field        writer          readers
///  0       4     ElementSize  creator, once   all (validated: equals sizeof(T) of the opener)
///  4       4     zero
///  8       8     Length       creator, once   all (validated: 0..int.MaxValue, ElementSize * Length = DataSize; Value: 1)
///  128     128   lock block   see LockDescriptor
/// </code>
/// <para>Counter (control 128 bytes, no semaphore, no data):</para>
/// <code>
///  offset  size  field        writer                      readers
///  0       8     Value        any process, atomic RMW     acquire (or as part of an RMW)
/// </code>
/// The elements themselves are plain memory: their ordering is the user's business (take <c>Lock</c>).
/// </summary>
internal static unsafe class SharedDataDescriptor
{
    public const int MemoryControlSize = 128;
    public const int SizeOffset = 0;

    public const int ArrayControlSize = 256;
    public const int ElementSizeOffset = 0;
    public const int LengthOffset = 8;
    public const int LockBlockOffset = 128;
    public const int ArraySemaphoreCount = 1;

    public const int CounterControlSize = 128;
    public const int CounterValueOffset = 0;

    /// <summary>The largest block a SharedMemory may have (the mapping must fit the address space comfortably).</summary>
    public const long MaxSize = 1L << 40;

    public static void InitializeMemory(byte* control, long size)
    {
        new Span<byte>(control, MemoryControlSize).Clear();
        *(long*)(control + SizeOffset) = size;
    }

    public static string? ValidateMemory(byte* control, long controlSize, long dataSize, int semaphoreCount)
    {
        if (controlSize != MemoryControlSize || semaphoreCount != 0)
        {
            return $"control block of {controlSize} bytes and {semaphoreCount} semaphores, a shared memory block has {MemoryControlSize} and 0";
        }

        long size = *(long*)(control + SizeOffset);
        return size != dataSize || size < 1 || size > MaxSize ? $"size {size} does not match the data region of {dataSize} bytes" : null;
    }

    public static void InitializeArray(byte* control, int elementSize, long length, bool recursiveLock)
    {
        new Span<byte>(control, ArrayControlSize).Clear();
        *(int*)(control + ElementSizeOffset) = elementSize;
        *(long*)(control + LengthOffset) = length;
        LockDescriptor.Initialize(control + LockBlockOffset, recursiveLock);
    }

    /// <summary>Checks an Array or Value control block against the opener's element size; on success <paramref name="length"/> is safe to index with.</summary>
    public static string? ValidateArray(byte* control, long controlSize, long dataSize, int semaphoreCount, int expectedElementSize, out int length)
    {
        length = 0;
        if (controlSize != ArrayControlSize || semaphoreCount != ArraySemaphoreCount)
        {
            return $"control block of {controlSize} bytes and {semaphoreCount} semaphores, an array has {ArrayControlSize} and {ArraySemaphoreCount}";
        }

        int elementSize = *(int*)(control + ElementSizeOffset);
        long stored = *(long*)(control + LengthOffset);
        if (elementSize != expectedElementSize)
        {
            return $"elements of {elementSize} bytes, the opener's type has {expectedElementSize}";
        }

        if (stored < 0 || stored > int.MaxValue || stored * (long)elementSize != dataSize)
        {
            return $"length {stored} of {elementSize}-byte elements does not match the data region of {dataSize} bytes";
        }

        length = (int)stored;
        return LockDescriptor.Validate(control + LockBlockOffset);
    }

    public static string? ValidateCounter(long controlSize, long dataSize, int semaphoreCount) =>
        controlSize != CounterControlSize || dataSize != 0 || semaphoreCount != 0
            ? $"control block of {controlSize} bytes, data of {dataSize}, {semaphoreCount} semaphores; a counter has {CounterControlSize}, 0, 0"
            : null;
}
