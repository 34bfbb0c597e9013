namespace ShmIpc;

/// <summary>
/// An exception thrown by user code in a child process (a <see cref="ShmProcess"/> target or a pool task),
/// brought back to the parent: the original type's name, its message and the child's stack trace.
/// </summary>
public sealed class ShmRemoteException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ShmRemoteException()
        : this("System.Exception", string.Empty, string.Empty)
    {
    }

    /// <summary>Creates the exception with a message (the remote type is unknown).</summary>
    public ShmRemoteException(string message)
        : this("System.Exception", message, string.Empty)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public ShmRemoteException(string message, Exception innerException)
        : base(message, innerException)
    {
        RemoteType = "System.Exception";
        RemoteMessage = message;
        RemoteStackTrace = string.Empty;
    }

    /// <summary>Creates the exception from what the child reported.</summary>
    /// <param name="remoteType">Full name of the exception's type in the child.</param>
    /// <param name="remoteMessage">Its message.</param>
    /// <param name="remoteStackTrace">The stack trace in the child.</param>
    public ShmRemoteException(string remoteType, string remoteMessage, string remoteStackTrace)
        : base($"{remoteType}: {remoteMessage}")
    {
        RemoteType = remoteType;
        RemoteMessage = remoteMessage;
        RemoteStackTrace = remoteStackTrace;
    }

    /// <summary>Full name of the type of the exception thrown in the child, e.g. "System.InvalidOperationException".</summary>
    public string RemoteType { get; }

    /// <summary>The message of the exception thrown in the child.</summary>
    public string RemoteMessage { get; }

    /// <summary>The stack trace in the child process where it was thrown.</summary>
    public string RemoteStackTrace { get; }

    /// <summary>The exception, then the child's stack trace, then the parent's.</summary>
    public override string ToString() =>
        $"{GetType().FullName}: {Message}{Environment.NewLine}--- remote stack trace ---{Environment.NewLine}{RemoteStackTrace}{Environment.NewLine}--- local stack trace ---{Environment.NewLine}{StackTrace}";
}

/// <summary>
/// The process running a task ended before it returned a result: killed by a signal, or it exited
/// (a crash, an <see cref="Environment.Exit"/> in user code). Only the tasks that process held fail this way.
/// </summary>
public sealed class ShmWorkerCrashedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ShmWorkerCrashedException()
        : this(0, null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ShmWorkerCrashedException(string message)
        : base(message)
    {
        Reason = message;
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public ShmWorkerCrashedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = message;
    }

    /// <summary>Creates the exception for process <paramref name="pid"/>, which ended with <paramref name="exitCode"/>.</summary>
    /// <param name="pid">The worker's process id.</param>
    /// <param name="exitCode">Its exit code in the Python convention (negative: killed by that signal), or null if unknown.</param>
    public ShmWorkerCrashedException(int pid, int? exitCode)
        : base($"Worker process {pid} ended while running this task: {DescribeExit(exitCode)}.")
    {
        Pid = pid;
        ExitCode = exitCode;
        Reason = DescribeExit(exitCode);
    }

    /// <summary>The process id of the worker that ended.</summary>
    public int Pid { get; }

    /// <summary>How it ended, in the Python convention: 0 or more for an exit code, minus the signal number when killed by a signal; null if unknown.</summary>
    public int? ExitCode { get; }

    /// <summary>How it ended, in words: "killed by signal 9 (SIGKILL)", "exited with code 3".</summary>
    public string Reason { get; }

    /// <summary>"killed by signal 9 (SIGKILL)", "exited with code 3", "ended in an unknown way".</summary>
    public static string DescribeExit(int? exitCode) => exitCode switch
    {
        null => "ended in an unknown way",
        < 0 => $"killed by signal {-exitCode} ({SignalName(-exitCode.Value)})",
        _ => $"exited with code {exitCode}",
    };

    private static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => $"signal {signal}",
    };
}
