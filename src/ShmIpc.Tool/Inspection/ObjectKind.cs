using System.Text.Json.Serialization;

namespace ShmIpc.Tool.Inspection;

/// <summary>What an object in /dev/shm is.</summary>
internal enum ObjectKind
{
    [JsonStringEnumMemberName("queue")]
    Queue,

    [JsonStringEnumMemberName("pipe")]
    Pipe,

    /// <summary>A pipe between a pool (or ShmProcess) parent and one of its children: named <c>shmpool-&lt;pid&gt;-&lt;starttime&gt;-...</c>.</summary>
    [JsonStringEnumMemberName("pool-channel")]
    PoolChannel,

    /// <summary>A bare segment with semaphores only (tests, demos).</summary>
    [JsonStringEnumMemberName("raw")]
    Raw,

    /// <summary>A named semaphore of a segment (<c>sem.shmipc.NAME.s&lt;i&gt;</c>).</summary>
    [JsonStringEnumMemberName("semaphore")]
    Semaphore,

    /// <summary>A segment whose header this build cannot read: foreign, corrupt, of a later layout version or a kind it does not know.</summary>
    [JsonStringEnumMemberName("unknown")]
    Unknown,

    /// <summary>The payload of a message longer than its queue's or pipe's ring (LAYOUT.md §8): <c>side-&lt;pid&gt;-&lt;start&gt;-&lt;seq&gt;</c>.</summary>
    [JsonStringEnumMemberName("side-segment")]
    SideSegment,
}
