using ShmIpc.Memory;

namespace ShmIpc.Tool.Inspection;

/// <summary>Liveness as ShmIpc itself decides it: pid and start time (LAYOUT.md §2); unreadable counts as alive.</summary>
internal static class Liveness
{
    public static ProcessRef Of(ISharedMemoryPlatform platform, ProcessIdentity identity, int startTimeBits = 64) =>
        new(identity.Pid, platform.IsAlive(identity, startTimeBits));
}
