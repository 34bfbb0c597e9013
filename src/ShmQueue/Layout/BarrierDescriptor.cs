namespace ShmIpc.Layout;

/// <summary>
/// The control block of a Barrier segment (1152 bytes, one semaphore s0 that waiters sleep on; no data). See native-notes/LAYOUT.md §7.7.
/// <code>
///  offset        size  field             writer                                             readers
///  0             8     Phase             the last arriver: atomic increment (after          acquire
///                                        Arrived = 0)
///  8             4     Arrived           arrivers: atomic increment; the last one stores 0   acquire
///  12            4     Broken            anyone: exchange 1 (a timeout, a dead participant); acquire
///                                        Reset: store 0
///  16            4     Sleepers          waiters/notifiers (§4)
///  20            4     ParticipantCount  creator, once (1..64)                               all (validated)
///  24            8     Epoch             Reset: atomic increment                             acquire
///  128 + 16 i    8     Owner             an open handle: CAS 0 -> its identity word;         acquire
///                                        release store 0 on dispose; CAS dead -> 0 by anyone
///  136 + 16 i    8     ArrivedPhase      that handle: phase + 1 when it arrives (release)    acquire
/// </code>
/// </summary>
internal static unsafe class BarrierDescriptor
{
    public const int SlotCount = 64;
    public const int SlotsOffset = 128;
    public const int SlotSize = 16;
    public const int ControlSize = SlotsOffset + (SlotCount * SlotSize);
    public const int PhaseOffset = 0;
    public const int ArrivedOffset = 8;
    public const int BrokenOffset = 12;
    public const int SleepersOffset = 16;
    public const int ParticipantCountOffset = 20;
    public const int EpochOffset = 24;
    public const int SlotOwnerOffset = 0;
    public const int SlotArrivedPhaseOffset = 8;
    public const int SemaphoreCount = 1;
    public const int Semaphore = 0;

    public static byte* Slot(byte* control, int index) => control + SlotsOffset + (index * SlotSize);

    public static void Initialize(byte* control, int participants)
    {
        new Span<byte>(control, ControlSize).Clear();
        *(int*)(control + ParticipantCountOffset) = participants;
    }

    /// <summary>Checks the block; on success <paramref name="participants"/> is the creator's count.</summary>
    public static string? Validate(byte* control, long controlSize, long dataSize, int semaphoreCount, out int participants)
    {
        participants = 0;
        if (controlSize != ControlSize || dataSize != 0 || semaphoreCount != SemaphoreCount)
        {
            return $"control block of {controlSize} bytes, data of {dataSize}, {semaphoreCount} semaphores; a barrier has {ControlSize}, 0, {SemaphoreCount}";
        }

        int count = *(int*)(control + ParticipantCountOffset);
        if (count < 1 || count > SlotCount)
        {
            return $"participant count {count} is not between 1 and {SlotCount}";
        }

        participants = count;
        return null;
    }
}
