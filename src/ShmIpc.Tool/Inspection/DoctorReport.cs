namespace ShmIpc.Tool.Inspection;

// Reports are plain records: the inspector fills them, the text and JSON renderers print them. The JSON
// names are these property names in camelCase; scripts rely on them, so rename with care.

/// <summary>One object's verdict in <c>shmipc doctor</c>.</summary>
/// <param name="Name">The object.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Health">How it is doing.</param>
/// <param name="Findings">One sentence per problem; empty when healthy.</param>
internal sealed record DoctorEntry(string Name, ObjectKind Kind, Health Health, IReadOnlyList<string> Findings);

/// <summary>What <c>shmipc doctor</c> prints.</summary>
/// <param name="Healthy">True when every object is <see cref="Health.Ok"/>.</param>
/// <param name="Objects">Each object's verdict.</param>
/// <param name="UnreadableProcesses">As in <see cref="ListReport"/>.</param>
internal sealed record DoctorReport(bool Healthy, IReadOnlyList<DoctorEntry> Objects, IReadOnlyList<int> UnreadableProcesses);
