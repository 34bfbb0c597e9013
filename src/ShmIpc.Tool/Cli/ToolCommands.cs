using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ShmIpc.Tool.Inspection;
using ShmIpc.Tool.Rendering;

namespace ShmIpc.Tool.Cli;

/// <summary>
/// The command line: <c>list</c>, <c>inspect NAME</c>, <c>doctor [NAME...]</c>, <c>clean [--dry-run] [NAME...]</c>, each with
/// <c>--json</c>. Each action asks the inspection classes for a report and hands it to a renderer.
/// </summary>
/// <remarks>
/// Exit codes: 0 done (doctor: everything healthy); 1 doctor found a problem, or inspect could not read the object;
/// 2 no such object, or a usage error.
/// </remarks>
internal sealed class ToolCommands
{
    public const int Success = 0;
    public const int Unhealthy = 1;
    public const int NotFound = 2;

    /// <summary>The generated serializers, printing sentences as written (a backquote stays a backquote, not \u0060).</summary>
    private static readonly ToolJsonContext s_json = new(new JsonSerializerOptions(ToolJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    private readonly TextWriter _output;
    private readonly TextWriter _error;
    private readonly ShmInspector _inspector;
    private readonly RootCommand _root;
    private readonly Option<bool> _json = new("--json")
    {
        Description = "Print the result as JSON, for scripts.",
        Recursive = true,
    };

    public ToolCommands(TextWriter output, TextWriter error, ShmInspector? inspector = null)
    {
        _output = output;
        _error = error;
        _inspector = inspector ?? new ShmInspector();
        _root = new RootCommand("Lists, inspects, diagnoses and cleans the ShmIpc queues, pipes and semaphores in /dev/shm. " +
            "Reads the segments' documented headers without writing a byte; only `clean` removes anything.");
        _root.Options.Add(_json);
        _root.Subcommands.Add(ListCommand());
        _root.Subcommands.Add(InspectCommand());
        _root.Subcommands.Add(DoctorCommand());
        _root.Subcommands.Add(CleanCommand());
    }

    /// <summary>Parses <paramref name="args"/> and runs the command; returns the exit code.</summary>
    public int Run(params string[] args) =>
        _root.Parse(args).Invoke(new InvocationConfiguration { Output = _output, Error = _error });

    /// <summary>Runs an action; a name that breaks ShmIpc's naming rules is reported like a usage error.</summary>
    private Func<ParseResult, int> Guarded(Func<ParseResult, int> action) => parse =>
    {
        try
        {
            return action(parse);
        }
        catch (ArgumentException e)
        {
            return Fail(parse, e.Message);
        }
    };

    private Command ListCommand()
    {
        var command = new Command("list", "Every ShmIpc segment and semaphore on the machine: name, kind, size, creator (alive or dead), how many processes have it open, age.");
        command.SetAction(Guarded(parse =>
        {
            ListReport report = _inspector.List();
            Write(parse, report, s_json.ListReport, TextRenderer.List);
            return Success;
        }));
        return command;
    }

    private Command InspectCommand()
    {
        var name = new Argument<string>("name") { Description = "The queue's or pipe's name, as given to Create (or its /dev/shm file name)." };
        var command = new Command("inspect", "One object in detail: a queue's capacity, depth, bytes used, sleepers and records in flight (and by whom); a pipe's ends and each direction's backlog.");
        command.Arguments.Add(name);
        command.SetAction(Guarded(parse =>
        {
            string wanted = parse.GetValue(name)!;
            InspectReport? report = _inspector.Inspect(wanted);
            if (report is null)
            {
                return Fail(parse, $"No ShmIpc segment named '{wanted}' ({ShmFiles.SegmentPath(ShmFiles.ToOsName(wanted))} does not exist).");
            }

            Write(parse, report, s_json.InspectReport, TextRenderer.Inspect);
            return report.Problem is null ? Success : Unhealthy;
        }));
        return command;
    }

    private Command DoctorCommand()
    {
        var names = new Argument<string[]>("names") { Description = "Only these objects (default: all).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("doctor", "Says for each object whether it is healthy, and when it is not, why and who repairs it. Exits 1 when any is not.");
        command.Arguments.Add(names);
        command.SetAction(Guarded(parse =>
        {
            DoctorReport report = Doctor.Examine(_inspector, parse.GetValue(names));
            Write(parse, report, s_json.DoctorReport, TextRenderer.Doctor);
            return report.Healthy ? Success : Unhealthy;
        }));
        return command;
    }

    private Command CleanCommand()
    {
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what would be removed; remove nothing." };
        var names = new Argument<string[]>("names") { Description = "Only these objects (default: all).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("clean", "Removes stale segments (creator dead, no process has them open) and orphan semaphores, as ShmMaintenance.RemoveStaleSegments does. Never one that a live process has open.");
        command.Options.Add(dryRun);
        command.Arguments.Add(names);
        command.SetAction(Guarded(parse =>
        {
            CleanReport report = Cleaner.Clean(parse.GetValue(dryRun), parse.GetValue(names), _inspector.Platform);
            Write(parse, report, s_json.CleanReport, TextRenderer.Clean);
            return Success;
        }));
        return command;
    }

    private void Write<T>(ParseResult parse, T report, JsonTypeInfo<T> json, Action<T, TextWriter> text)
    {
        if (parse.GetValue(_json))
        {
            _output.WriteLine(JsonSerializer.Serialize(report, json));
        }
        else
        {
            text(report, _output);
        }
    }

    private int Fail(ParseResult parse, string message)
    {
        if (parse.GetValue(_json))
        {
            _output.WriteLine(JsonSerializer.Serialize(new ToolError(message), s_json.ToolError));
        }
        else
        {
            _error.WriteLine(message);
        }

        return NotFound;
    }
}
