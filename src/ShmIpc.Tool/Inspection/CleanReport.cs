namespace ShmIpc.Tool.Inspection;

// Reports are plain records: the inspector fills them, the text and JSON renderers print them. The JSON
// names are these property names in camelCase; scripts rely on them, so rename with care.

/// <summary>One object <c>shmipc clean</c> removed (or, with --dry-run, would remove).</summary>
/// <param name="Name">The segment's name, or the semaphore's.</param>
/// <param name="Kind"><see cref="ObjectKind.Semaphore"/> for an orphan semaphore, else the segment's kind.</param>
/// <param name="Reason">Why it is stale.</param>
internal sealed record CleanedObject(string Name, ObjectKind Kind, string Reason);

/// <summary>One object <c>shmipc clean</c> left, and why.</summary>
internal sealed record KeptObject(string Name, string Reason);

/// <summary>What <c>shmipc clean</c> prints.</summary>
/// <param name="DryRun">True when nothing was removed.</param>
/// <param name="Removed">What was (or would be) removed.</param>
/// <param name="Kept">Segments left in place, each with the reason.</param>
internal sealed record CleanReport(bool DryRun, IReadOnlyList<CleanedObject> Removed, IReadOnlyList<KeptObject> Kept);
