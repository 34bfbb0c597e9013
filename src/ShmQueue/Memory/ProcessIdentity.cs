using ShmIpc.Layout;

namespace ShmIpc.Memory;

/// <summary>
/// A process as other processes can recognise it: its pid and its start time. A pid alone is not an
/// identity (pids are reused); the pair is, for as long as the machine runs.
/// </summary>
/// <param name="Pid">The process id.</param>
/// <param name="StartTime">An opaque, platform-defined start time (Linux: clock ticks since boot, field 22 of /proc/pid/stat).</param>
internal readonly record struct ProcessIdentity(int Pid, ulong StartTime)
{
    /// <summary>The 64-bit word that names this process in a record header or an owner slot (<see cref="WordTagDescriptor"/>).</summary>
    public ulong ToWord() => WordTagDescriptor.IdentityWord(Pid, StartTime);

    /// <summary>Decodes <see cref="ToWord"/>; the start time keeps only its low 32 bits.</summary>
    public static ProcessIdentity FromWord(ulong word) => new(WordTagDescriptor.IdentityPid(word), WordTagDescriptor.IdentityStartTime(word));

    /// <summary>True when <paramref name="word"/> has the shape that <see cref="ToWord"/> produces.</summary>
    public static bool IsIdentityWord(ulong word) => WordTagDescriptor.IsIdentity(word);
}
