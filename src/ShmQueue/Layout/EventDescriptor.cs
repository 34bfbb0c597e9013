namespace ShmIpc.Layout;

/// <summary>
/// The control block of an Event segment (128 bytes, one semaphore s0 that waiters sleep on; no data). See native-notes/LAYOUT.md §7.4.
/// <code>
///  offset  size  field       writer                                     readers
///  0       4     State       Set: release store 1 (manual) / 1 (auto);   acquire; an auto-reset waiter takes it
///                            Reset: release store 0                       with CAS 1 -> 0
///  4       4     Flags       creator, once: bit 0 auto-reset              all (validated)
///  8       8     Generation  Set (manual reset): atomic increment,        waiters: acquire at the start of a wait,
///                            after the State store                        then "changed" means a Set happened
///  16      4     Sleepers    waiters/notifiers (§4)
/// </code>
/// The Generation makes a Set immediately followed by a Reset wake every waiter that was waiting (as Python's
/// Event does): a waiter's condition is <c>State != 0 || Generation != generation when it began</c>.
/// </summary>
internal static unsafe class EventDescriptor
{
    public const int ControlSize = 128;
    public const int StateOffset = 0;
    public const int FlagsOffset = 4;
    public const int GenerationOffset = 8;
    public const int SleepersOffset = 16;
    public const int SemaphoreCount = 1;
    public const int Semaphore = 0;

    public const uint FlagAutoReset = 1;

    public static void Initialize(byte* control, bool autoReset, bool initialState)
    {
        new Span<byte>(control, ControlSize).Clear();
        *(uint*)(control + FlagsOffset) = autoReset ? FlagAutoReset : 0;
        *(int*)(control + StateOffset) = initialState ? 1 : 0;
    }

    public static string? Validate(byte* control, long controlSize, long dataSize, int semaphoreCount)
    {
        if (controlSize != ControlSize || dataSize != 0 || semaphoreCount != SemaphoreCount)
        {
            return $"control block of {controlSize} bytes, data of {dataSize}, {semaphoreCount} semaphores; an event has {ControlSize}, 0, {SemaphoreCount}";
        }

        uint flags = *(uint*)(control + FlagsOffset);
        return (flags & ~FlagAutoReset) != 0 ? $"event flags 0x{flags:X}: unknown bits" : null;
    }
}
