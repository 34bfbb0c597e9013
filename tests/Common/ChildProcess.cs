using System.Collections.Concurrent;
using System.Diagnostics;

namespace ShmIpc.Tests.Common;

/// <summary>
/// A real child process running one scenario of ShmTestHost. Its stdout lines are collected so a test
/// can wait for a line (with a deadline) instead of sleeping.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly List<string> _stderr = new();

    private ChildProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            // Runs on a thread-pool thread, possibly after Dispose (the end of the output can arrive late): an
            // exception here would crash the whole test host, so a disposed or completed collection is ignored.
            try
            {
                if (e.Data is null)
                {
                    _lines.CompleteAdding();
                }
                else
                {
                    _lines.Add(e.Data);
                }
            }
            catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
            {
                // Disposed, or completed already: nobody reads these lines any more.
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.Add(e.Data);
                }
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return string.Join('\n', _stderr);
            }
        }
    }

    /// <summary>Path of ShmTestHost.dll: copied beside the test assembly by the project reference.</summary>
    public static string HostPath
    {
        get
        {
            string path = Path.Combine(AppContext.BaseDirectory, "ShmTestHost.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("ShmTestHost.dll is not beside the tests; build the solution.", path);
        }
    }

    /// <summary>How long a child may take to start and say READY on a loaded two-core machine.</summary>
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Starts ShmTestHost running scenario <c>args[0]</c>.</summary>
    public static ChildProcess Start(params string[] args)
    {
        // Start quickly: the children of tests are short-lived.
        var environment = new Dictionary<string, string> { ["DOTNET_TieredPGO"] = "0", ["DOTNET_TC_QuickJitForLoops"] = "1" };
        return StartProgram("dotnet", ["exec", HostPath, .. args], environment);
    }

    /// <summary>Starts ShmTestHost running scenario <c>args[0]</c> and waits (<see cref="ReadyTimeout"/>) for its READY line.</summary>
    public static ChildProcess StartReady(params string[] args)
    {
        ChildProcess child = Start(args);
        try
        {
            child.WaitForLine("READY", ReadyTimeout);
            return child;
        }
        catch
        {
            child.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts ShmTestHost running scenario <c>args[0]</c>, waits for its READY line and SIGKILLs it: what a process
    /// that crashed there leaves behind. Returns its pid.
    /// </summary>
    public static int StartReadyThenKill9(params string[] args)
    {
        using ChildProcess child = StartReady(args);
        child.Kill9();
        return child.Pid;
    }

    /// <summary>Starts any program as a child (the C and Python interop peers, for instance).</summary>
    public static ChildProcess StartProgram(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        ProcessStartInfo info = StartInfo(program, args);
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        return new ChildProcess(Process.Start(info) ?? throw new InvalidOperationException($"Could not start {program}."));
    }

    /// <summary>
    /// Runs a program to completion: its exit code, stdout and stderr. One still running at <paramref name="timeout"/>
    /// is killed (with its children) and a <see cref="TimeoutException"/> says so. <paramref name="configure"/> may
    /// change the start info first (working directory, environment).
    /// </summary>
    public static (int ExitCode, string Output, string Error) Run(string program, IEnumerable<string> args, TimeSpan timeout, Action<ProcessStartInfo>? configure = null)
    {
        ProcessStartInfo info = StartInfo(program, args);
        configure?.Invoke(info);
        using Process process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {program}.");
        process.StandardInput.Close(); // a program that reads its input sees the end of it, not the test host's
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
            throw new TimeoutException($"{program} {string.Join(' ', info.ArgumentList)} did not finish within {timeout.TotalSeconds:0.#} s.");
        }

        process.WaitForExit(); // the end of both output streams
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>Sends <paramref name="signal"/> (KILL, STOP, CONT, TERM ...) to <paramref name="pid"/>, as <c>kill -SIGNAL</c> does.</summary>
    public static void Signal(int pid, string signal)
    {
        using Process kill = Process.Start("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            ?? throw new InvalidOperationException("Could not start kill.");
        kill.WaitForExit();
    }

    private static ProcessStartInfo StartInfo(string program, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return info;
    }

    /// <summary>Waits for the next stdout line; fails the test with the child's stderr when none comes in time.</summary>
    public string ReadLine(TimeSpan timeout)
    {
        if (_lines.TryTake(out string? line, timeout))
        {
            return line;
        }

        throw new TimeoutException($"Child {Pid} wrote no line within {timeout.TotalSeconds:0.#} s (exited: {_process.HasExited}). stderr:\n{StandardError}");
    }

    /// <summary>
    /// Reads lines until one starts with <paramref name="prefix"/>; returns it. A line starting with ERROR or
    /// BAD (a child reporting a failure) fails the test at once, with the child's stderr.
    /// </summary>
    public string WaitForLine(string prefix, TimeSpan timeout)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            TimeSpan left = TimeSpan.FromSeconds(Math.Max(0, (deadline - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency));
            string line = ReadLine(left);
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }

            if (line.StartsWith("ERROR", StringComparison.Ordinal) || line.StartsWith("BAD", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"Child {Pid} reported '{line}'. stderr:\n{StandardError}");
            }
        }
    }

    /// <summary>Closes the child's stdin (children that hold a segment until then release it).</summary>
    public void CloseInput() => _process.StandardInput.Close();

    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>SIGKILL, as <c>kill -9</c> does, then reaps the child.</summary>
    public void Kill9()
    {
        if (!_process.HasExited)
        {
            Signal(Pid, "KILL");
        }

        _process.WaitForExit(10_000);
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            throw new TimeoutException($"Child {Pid} did not exit within {timeout.TotalSeconds:0.#} s. stderr:\n{StandardError}");
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _lines.Dispose();
    }
}

/// <summary>Unique names per test, so parallel or repeated runs never meet.</summary>
internal static class TestNames
{
    private static int s_counter;

    public static string Unique(string what) =>
        $"t{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}-{what}";

    /// <summary>The /dev/shm entries a name owns (segment file and semaphores).</summary>
    public static string[] ShmFilesOf(string name) =>
        Directory.GetFiles("/dev/shm", $"*shmipc.{name}*");
}
