namespace ShmIpc.Tool.Rendering;

/// <summary>What --json prints when a command cannot do its work (an unknown name, for instance).</summary>
/// <param name="Error">The message.</param>
internal sealed record ToolError(string Error);
