using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using ShmIpc.Internal;
using ShmIpc.Protocol;

namespace ShmIpc.Hosting;

/// <summary>
/// Starts child processes whose entry point is ShmPool.dll itself:
/// <code>
/// &lt;dotnet&gt; exec --runtimeconfig &lt;app&gt;.runtimeconfig.json --depsfile &lt;app&gt;.deps.json &lt;dir&gt;/ShmPool.dll
///          --shmpool-child &lt;pipe name&gt; &lt;parent pid&gt; &lt;parent start time&gt; &lt;display name&gt;
/// </code>
/// </summary>
/// <remarks>
/// Why this way:
/// - The child needs the same runtime, frameworks and dependency set as the parent. The parent's own
///   runtimeconfig.json and deps.json say exactly that, whatever the parent is: a console app
///   (<c>app.deps.json</c>), or a test run whose process is <c>testhost.dll</c> started the same way by
///   VSTest with the test project's files. The host reports them in <c>APP_CONTEXT_DEPS_FILES</c>.
/// - ShmPool.dll is compiled as an executable, so it can be the entry assembly: the user adds no project,
///   no Main hook and no build step. The user's assembly is then found by name through the deps file, or
///   from its path (<see cref="AssemblyLoader"/>).
/// - <c>dotnet</c> is the muxer of the running runtime (three levels above the runtime directory), so a
///   child never runs on another installation than its parent.
/// - All children are started from one long-lived thread: the child arms <c>PR_SET_PDEATHSIG</c>, which
///   Linux fires when the <em>thread</em> that forked it ends; a thread-pool thread that retires would
///   otherwise kill healthy children.
/// - Standard output and error are inherited (a child's Console output shows where the parent's does);
///   standard input is an empty pipe, closed at once.
/// </remarks>
internal static class ChildLauncher
{
    public const string ChildSwitch = "--shmpool-child";

    private static readonly Lazy<LaunchFiles> s_files = new(FindLaunchFiles);
    private static readonly BlockingCollection<LaunchRequest> s_requests = new();
    private static readonly Lazy<Thread> s_thread = new(StartLauncherThread);

    /// <summary>Where the child's files are: found once per process.</summary>
    internal sealed record LaunchFiles(string DotnetPath, string? RuntimeConfig, string? DepsFile, string EntryAssembly);

    private sealed record LaunchRequest(ProcessStartInfo Info, TaskCompletionSource<Process> Started);

    public static LaunchFiles Files => s_files.Value;

    /// <summary>Starts a child that connects to pipe <paramref name="pipeName"/> and serves it.</summary>
    public static Process Start(string pipeName, string displayName, IReadOnlyDictionary<string, string>? environment)
    {
        LaunchFiles files = Files;
        var info = new ProcessStartInfo(files.DotnetPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = false,
            RedirectStandardError = false,
        };
        info.ArgumentList.Add("exec");
        if (files.RuntimeConfig is not null)
        {
            info.ArgumentList.Add("--runtimeconfig");
            info.ArgumentList.Add(files.RuntimeConfig);
        }

        if (files.DepsFile is not null)
        {
            info.ArgumentList.Add("--depsfile");
            info.ArgumentList.Add(files.DepsFile);
        }

        info.ArgumentList.Add(files.EntryAssembly);
        info.ArgumentList.Add(ChildSwitch);
        info.ArgumentList.Add(pipeName);
        ProcessIdentity me = ShmQueueContract.CurrentProcess;
        info.ArgumentList.Add(me.Pid.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(me.StartTime.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(displayName);
        // The runtime loads its LTTng trace provider at start (about 10 ms of a child's 30-40 ms boot) unless told
        // not to; children skip it unless the parent's environment or the caller asks for it.
        if (Environment.GetEnvironmentVariable("DOTNET_LTTng") is null)
        {
            info.Environment["DOTNET_LTTng"] = "0";
        }

        if (environment is not null)
        {
            foreach ((string key, string value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        var request = new LaunchRequest(info, new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously));
        _ = s_thread.Value;
        s_requests.Add(request);
        Process process = request.Started.Task.GetAwaiter().GetResult();

        // The child reads nothing from standard input: give it end-of-file.
        process.StandardInput.Close();
        return process;
    }

    /// <summary>
    /// Starts a child (<see cref="Start"/>) and, right after, creates its pipe and sends <paramref name="firstMessage"/>:
    /// the pipe's creation overlaps the child's runtime start, and the child waits for the pipe as long as this process
    /// lives (ChildHost.ConnectWhenCreated), so no child is ever given up for starting slowly. Kills and reaps the child
    /// if the pipe cannot be made.
    /// </summary>
    public static (Process Process, ChildChannel Channel) StartWithChannel(string pipeName, string displayName,
        IReadOnlyDictionary<string, string>? environment, ShmWaitStrategy? waitStrategy, ReadOnlySpan<byte> firstMessage)
    {
        Process process = Start(pipeName, displayName, environment);
        ChildChannel? channel = null;
        try
        {
            channel = ChildChannel.Create(pipeName, waitStrategy);
            channel.Send(firstMessage);
            StartTimeline.Mark("pipe-created");
            return (process, channel);
        }
        catch
        {
            channel?.Dispose();
            KillAndReap(process);
            throw;
        }
    }

    /// <summary>Ends a child that will not be used (its pipe could not be made): SIGKILL, then reap it.</summary>
    public static void KillAndReap(Process process)
    {
        _ = ShmQueueContract.Kill(process.Id);
        process.WaitForExit();
        process.Dispose();
    }

    /// <summary>The command line a child is started with, for logs and the documentation.</summary>
    public static string DescribeCommandLine(Process process) =>
        string.Join(' ', process.StartInfo.ArgumentList.Prepend(process.StartInfo.FileName));

    private static Thread StartLauncherThread()
    {
        var thread = new Thread(static () =>
        {
            foreach (LaunchRequest request in s_requests.GetConsumingEnumerable())
            {
                try
                {
                    StartTimeline.Mark("process-start");
                    Process process = Process.Start(request.Info) ?? throw new InvalidOperationException("Process.Start returned no process.");
                    StartTimeline.Mark("process-started");
                    request.Started.SetResult(process);
                }
#pragma warning disable CA1031 // Any failure to start belongs to the caller that asked.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    request.Started.SetException(e);
                }
            }
        })
        {
            IsBackground = true,
            Name = "ShmPool launcher",
        };
        thread.Start();
        return thread;
    }

    private static LaunchFiles FindLaunchFiles()
    {
        string entry = typeof(ChildLauncher).Assembly.Location;
        if (string.IsNullOrEmpty(entry))
        {
            throw new PlatformNotSupportedException("ShmPool.dll was not loaded from a file (single-file or in-memory app): it cannot start child processes from itself.");
        }

        // The muxer of the running runtime: <root>/shared/Microsoft.NETCore.App/<version>/ -> <root>/dotnet.
        string runtimeDirectory = RuntimeEnvironment.GetRuntimeDirectory();
        string root = Path.GetFullPath(Path.Combine(runtimeDirectory, "..", "..", ".."));
        string dotnet = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        if (!File.Exists(dotnet))
        {
            dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath)
                ? hostPath
                : "dotnet";
        }

        // The application's deps.json is the first one the host lists that is not a framework's.
        string? deps = null;
        if (AppContext.GetData("APP_CONTEXT_DEPS_FILES") is string list)
        {
            foreach (string candidate in list.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!candidate.StartsWith(root, StringComparison.Ordinal) && File.Exists(candidate))
                {
                    deps = candidate;
                    break;
                }
            }
        }

        string? config = null;
        if (deps is not null)
        {
            string sibling = deps[..^".deps.json".Length] + ".runtimeconfig.json";
            config = File.Exists(sibling) ? sibling : null;
        }

        config ??= WriteRuntimeConfig(entry);
        return new LaunchFiles(dotnet, config, deps, entry);
    }

    /// <summary>No runtimeconfig.json of the application was found: write one naming the frameworks this process runs on.</summary>
    private static string WriteRuntimeConfig(string entry)
    {
        var frameworks = new List<(string Name, string Version)>();
        if (AppContext.GetData("FX_DEPS_FILE") is string fxDeps && fxDeps.Length > 0)
        {
            foreach (string file in fxDeps.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                // .../shared/<framework>/<version>/<framework>.deps.json
                string? versionDir = Path.GetDirectoryName(file);
                string? nameDir = versionDir is null ? null : Path.GetDirectoryName(versionDir);
                if (versionDir is not null && nameDir is not null)
                {
                    frameworks.Add((Path.GetFileName(nameDir), Path.GetFileName(versionDir)));
                }
            }
        }

        if (frameworks.Count == 0)
        {
            frameworks.Add(("Microsoft.NETCore.App", Environment.Version.ToString(3)));
        }

        var json = new StringBuilder("{\"runtimeOptions\":{\"frameworks\":[");
        json.AppendJoin(',', frameworks.Select(static f => $"{{\"name\":\"{f.Name}\",\"version\":\"{f.Version}\"}}"));
        json.Append("]}}");
        string directory = Path.Combine(Path.GetTempPath(), "shmpool-" + Environment.UserName);
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, $"{Path.GetFileNameWithoutExtension(entry)}.{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(json.ToString())))[..16]}.runtimeconfig.json");
        if (!File.Exists(path))
        {
            string temporary = path + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            File.WriteAllText(temporary, json.ToString());
            File.Move(temporary, path, overwrite: true);
        }

        return path;
    }
}
