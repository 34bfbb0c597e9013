namespace ShmIpc.Layout;

/// <summary>
/// The control block of a Semaphore segment (128 bytes, one semaphore s0 that waiters sleep on; no data). See native-notes/LAYOUT.md §7.5.
/// <code>
///  offset  size  field       writer                                          readers
///  0       4     Count       CAS by waiters (c -> c - 1 when c > 0) and      acquire
///                            releasers (c -> c + n when c + n &lt;= Maximum)
///  4       4     Maximum     creator, once (1..int.MaxValue)                 all (validated)
///  8       4     Sleepers    waiters/notifiers (§4)
/// </code>
/// </summary>
internal static unsafe class SemaphoreDescriptor
{
    public const int ControlSize = 128;
    public const int CountOffset = 0;
    public const int MaximumOffset = 4;
    public const int SleepersOffset = 8;
    public const int SemaphoreCount = 1;
    public const int Semaphore = 0;

    public static void Initialize(byte* control, int initialCount, int maximumCount)
    {
        new Span<byte>(control, ControlSize).Clear();
        *(int*)(control + CountOffset) = initialCount;
        *(int*)(control + MaximumOffset) = maximumCount;
    }

    /// <summary>Checks the block; on success <paramref name="maximum"/> is the creator's maximum.</summary>
    public static string? Validate(byte* control, long controlSize, long dataSize, int semaphoreCount, out int maximum)
    {
        maximum = 0;
        if (controlSize != ControlSize || dataSize != 0 || semaphoreCount != SemaphoreCount)
        {
            return $"control block of {controlSize} bytes, data of {dataSize}, {semaphoreCount} semaphores; a semaphore has {ControlSize}, 0, {SemaphoreCount}";
        }

        int max = *(int*)(control + MaximumOffset);
        int count = MappedAtomics.ReadInt32Acquire(control + CountOffset);
        if (max < 1 || count < 0 || count > max)
        {
            return $"count {count} and maximum {max} are out of range";
        }

        maximum = max;
        return null;
    }
}
