namespace ShmIpc.Layout;

/// <summary>
/// The control block of a Condition segment (1152 bytes, one semaphore s0 that waiters sleep on; no data). See native-notes/LAYOUT.md §7.6.
/// <code>
///  offset        size  field       writer                                         readers
///  0             4     Sleepers    waiters/notifiers (§4)
///  4             4     SlotCount   creator, once (64)                             all (validated)
///  128 + 16 i    8     Owner       waiter: CAS 0 -> its identity word (claims);    notifiers: acquire
///                                  release store 0 when it leaves; a notifier
///                                  that finds it dead: CAS dead -> 0
///  136 + 16 i    4     Ticket      notifier: CAS 0 -> 1 (notified);               the waiter: acquire
///                                  waiter that times out: CAS 0 -> 2 (withdrawn);
///                                  store 0 (release) before Owner is freed
/// </code>
/// A free slot always has Ticket 0 (it is reset before Owner is freed), so a freshly claimed slot is "waiting".
/// </summary>
internal static unsafe class ConditionDescriptor
{
    public const int SlotCount = 64;
    public const int SlotsOffset = 128;
    public const int SlotSize = 16;
    public const int ControlSize = SlotsOffset + (SlotCount * SlotSize);
    public const int SleepersOffset = 0;
    public const int SlotCountOffset = 4;
    public const int SlotOwnerOffset = 0;
    public const int SlotTicketOffset = 8;
    public const int SemaphoreCount = 1;
    public const int Semaphore = 0;

    public const int TicketWaiting = 0;
    public const int TicketNotified = 1;
    public const int TicketWithdrawn = 2;

    public static byte* Slot(byte* control, int index) => control + SlotsOffset + (index * SlotSize);

    public static void Initialize(byte* control)
    {
        new Span<byte>(control, ControlSize).Clear();
        *(int*)(control + SlotCountOffset) = SlotCount;
    }

    public static string? Validate(byte* control, long controlSize, long dataSize, int semaphoreCount) =>
        controlSize != ControlSize || dataSize != 0 || semaphoreCount != SemaphoreCount || *(int*)(control + SlotCountOffset) != SlotCount
            ? $"control block of {controlSize} bytes, data of {dataSize}, {semaphoreCount} semaphores, {*(int*)(control + SlotCountOffset)} slots; " +
              $"a condition has {ControlSize}, 0, {SemaphoreCount}, {SlotCount}"
            : null;
}
