using System.Text.Json.Serialization;
using ShmIpc.Tool.Inspection;

namespace ShmIpc.Tool.Rendering;

/// <summary>
/// The --json output, generated at compile time (no reflection: the tool starts fast and trims cleanly).
/// camelCase names, enums as their lower-case words, nulls left out.
/// </summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ListReport))]
[JsonSerializable(typeof(InspectReport))]
[JsonSerializable(typeof(DoctorReport))]
[JsonSerializable(typeof(CleanReport))]
[JsonSerializable(typeof(ToolError))]
internal sealed partial class ToolJsonContext : JsonSerializerContext;
