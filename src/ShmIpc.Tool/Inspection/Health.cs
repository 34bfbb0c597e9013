using System.Text.Json.Serialization;

namespace ShmIpc.Tool.Inspection;

/// <summary>How an object is doing, worst last.</summary>
internal enum Health
{
    /// <summary>Nothing to do.</summary>
    [JsonStringEnumMemberName("ok")]
    Ok,

    /// <summary>Something went wrong that ShmIpc repairs by itself (a dead producer's record, a dead reader's): worth knowing, no action needed.</summary>
    [JsonStringEnumMemberName("warning")]
    Warning,

    /// <summary>Left behind: its creator is dead and nobody has it open; <c>shmipc clean</c> removes it.</summary>
    [JsonStringEnumMemberName("stale")]
    Stale,

    /// <summary>Cannot be used as it is: a header or control block that does not validate.</summary>
    [JsonStringEnumMemberName("broken")]
    Broken,
}
