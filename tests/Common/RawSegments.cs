using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Tests.Common;

/// <summary>
/// A bare segment for foundation tests: control block word 0 is a sleeper count, word 64 a flag
/// another process sets; two semaphores.
/// </summary>
internal static unsafe class RawSegments
{
    public const int SleepersOffset = 0;
    public const int FlagOffset = 64;

    internal static ShmSegment Create(string name, bool groupAccess = false) =>
        ShmSegment.Create(name, SegmentKind.Raw, 128, 4096, 2, groupAccess, static _ => { });

    /// <summary>A raw segment under a unique name, unlinked and removed when the fixture is disposed.</summary>
    internal static TempSegment<ShmSegment> CreateTemp(string what, bool groupAccess = false) =>
        TempSegment.Create(what, name => Create(name, groupAccess), static segment => segment.Unlink());

    internal static ShmSegment Open(string name) => ShmSegment.Open(name, SegmentKind.Raw, TimeSpan.FromSeconds(2));

    internal static WaitSignal Signal(ShmSegment segment, NamedSemaphore semaphore) =>
        new((int*)(segment.Control + SleepersOffset), semaphore);

    internal static long ReadFlag(ShmSegment segment) => MappedAtomics.ReadInt64Acquire(segment.Control + FlagOffset);

    internal static void SetFlag(ShmSegment segment, long value) => MappedAtomics.WriteInt64Release(segment.Control + FlagOffset, value);

    /// <summary>Satisfied once the flag is non-zero.</summary>
    internal struct FlagSet : IWaitCondition
    {
        private readonly byte* _control;

        public FlagSet(ShmSegment segment) => _control = segment.Control;

        public readonly bool IsSatisfied() => MappedAtomics.ReadInt64Acquire(_control + FlagOffset) != 0;

        public readonly void BeforeSleep()
        {
        }
    }
}
