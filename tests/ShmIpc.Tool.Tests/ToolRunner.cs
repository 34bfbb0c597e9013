using System.Text.Json;
using ShmIpc.Tool.Cli;

namespace ShmIpc.Tool.Tests;

/// <summary>Runs the tool's commands in this process, as <c>shmipc ARGS</c> would, and captures what they print.</summary>
internal static class ToolRunner
{
    public static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(20);

    public static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = new ToolCommands(output, error).Run(args);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Runs with --json and parses the output.</summary>
    public static JsonElement Json(out int exitCode, params string[] args)
    {
        (exitCode, string output, string error) = Run([.. args, "--json"]);
        try
        {
            using JsonDocument document = JsonDocument.Parse(output);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new AssertFailedException($"shmipc {string.Join(' ', args)} --json printed no JSON ({e.Message}):\n{output}\n{error}");
        }
    }

    public static JsonElement Json(params string[] args) => Json(out _, args);

    /// <summary>The object named <paramref name="name"/> in a list or doctor report's "objects".</summary>
    public static JsonElement ObjectNamed(JsonElement report, string name) =>
        report.GetProperty("objects").EnumerateArray().Single(o => o.GetProperty("name").GetString() == name);
}
