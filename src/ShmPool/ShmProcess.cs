using System.Diagnostics;
using System.Globalization;
using ShmIpc.Hosting;
using ShmIpc.Internal;
using ShmIpc.Protocol;

namespace ShmIpc;

/// <summary>
/// A static method running in a new .NET process: the counterpart of Python's <c>multiprocessing.Process</c>.
/// The child runs ShmPool.dll as its entry point with the parent's runtime and dependencies, loads the
/// method's assembly, receives the argument over a shared-memory pipe, runs the method and sends back the
/// result or the exception. It ends when its parent ends.
/// </summary>
/// <remarks>
/// The target must be a static method, or a lambda that captures nothing, of an assembly the parent loaded
/// from a file. Shared-memory handles in the argument (a <see cref="ShmConnection"/>, alone or in a tuple or
/// record) arrive open in the child; a pipe end is shared with the child (the parent's copy stays usable; close it
/// when done, as in Python).
/// </remarks>
public class ShmProcess : IDisposable, IShmWaitable
{
    private static int s_counter;

    /// <summary>Every child this process started and has not disposed: for <see cref="ActiveChildren"/> and the exit handler.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<ShmProcess, bool> s_children = new();
    private static int s_exitHandlerInstalled;
    private static int s_terminating;
    private static System.Runtime.InteropServices.PosixSignalRegistration? s_sigterm;

    private readonly Process _process;
    private readonly ChildChannel _channel;
    private readonly Lock _lock = new();
    private byte[]? _outcome;
    private int _disposed;
    private int _endSeen;

    private protected ShmProcess(Process process, ChildChannel channel, string name, bool daemon)
    {
        _process = process;
        _channel = channel;
        Name = name;
        Pid = process.Id;
        Daemon = daemon;
        InstallExitHandler();
        s_children[this] = true;
    }

    /// <summary>This process: its name, pid, and whether (and by whom) ShmIpc started it. Python's <c>current_process()</c>.</summary>
    public static ShmProcessInfo Current => ChildHost.Current ?? s_main.Value;

    private static readonly Lazy<ShmProcessInfo> s_main = new(static () => new ShmProcessInfo("MainProcess", Environment.ProcessId, parentPid: null, isPoolWorker: false));

    /// <summary>The children this process started that are still running (Python's <c>active_children()</c>); pool workers are not listed.</summary>
    public static IReadOnlyList<ShmProcess> ActiveChildren() => s_children.Keys.Where(static c => c.IsRunningNoThrow()).OrderBy(static c => c.Pid).ToArray();

    /// <summary>IsAlive, false for a child disposed meanwhile (its Process can no longer be asked).</summary>
    private bool IsRunningNoThrow()
    {
        try
        {
            return _disposed == 0 && IsAlive;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Whether the child ends with its parent (see <see cref="ShmProcessOptions.Daemon"/>).</summary>
    public bool Daemon { get; }

    /// <summary>The child's process id.</summary>
    public int Pid { get; }

    /// <summary>The name given in the options, or "ShmProcess-N".</summary>
    public string Name { get; }

    /// <summary>True while the child runs.</summary>
    public bool IsAlive => !_process.HasExited;

    /// <summary>
    /// Null while the child runs; then its exit code as in Python: 0 when the target returned, 1 when it threw,
    /// minus the signal number when a signal ended it (-9 after <see cref="Kill"/>, -15 after <see cref="Terminate"/>).
    /// </summary>
    /// <remarks>
    /// The runtime reports a death by signal N as exit code 128 + N. A child whose target returned says so on the
    /// pipe before it exits, so such codes are read as signals only when the child did not: a target that calls
    /// <c>Environment.Exit(137)</c> itself shows as -9.
    /// </remarks>
    public int? ExitCode
    {
        get
        {
            if (!_process.HasExited)
            {
                return null;
            }

            _process.WaitForExit(); // make sure the exit code is collected
            int raw = _process.ExitCode;
            if (raw is > 128 and <= 128 + 64 && TryTakeOutcome(TimeSpan.Zero) is null)
            {
                return -(raw - 128);
            }

            return raw;
        }
    }

    /// <summary>Runs <paramref name="target"/>(<paramref name="arg"/>) in a new process.</summary>
    /// <exception cref="ArgumentException">The target is not a static method or a capture-free lambda; the message says why.</exception>
    public static ShmProcess Start<TArg>(Action<TArg> target, TArg arg, ShmProcessOptions? options = null)
    {
        (Process process, ChildChannel channel, string name) = Launch(target, typeof(TArg), arg, hasResult: false, options);
        return new ShmProcess(process, channel, name, options?.Daemon ?? true);
    }

    /// <summary>Runs <paramref name="target"/>(<paramref name="arg"/>) in a new process; <see cref="ShmProcess{TResult}.GetResult()"/> returns its result.</summary>
    /// <exception cref="ArgumentException">The target is not a static method or a capture-free lambda; the message says why.</exception>
    public static ShmProcess<TResult> Start<TArg, TResult>(Func<TArg, TResult> target, TArg arg, ShmProcessOptions? options = null)
    {
        (Process process, ChildChannel channel, string name) = Launch(target, typeof(TArg), arg, hasResult: true, options);
        return new ShmProcess<TResult>(process, channel, name, options?.Daemon ?? true, target.Method.ReturnType, options?.Serializer ?? ShmMessagePackSerializer.Instance);
    }

    /// <summary>Waits, with no time limit, for the child to end.</summary>
    public void Join()
    {
        _process.WaitForExit();
        ChildEnded();
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the child to end; false if it still runs (as <see cref="Thread.Join(TimeSpan)"/>).</summary>
    public bool Join(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return false;
        }

        Join();
        return true;
    }

    /// <summary>Waits for the child to end, until <paramref name="cancellationToken"/> is cancelled (the child goes on running).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void Join(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled || _process.HasExited)
        {
            Join();
            return;
        }

        JoinAsync(cancellationToken).GetAwaiter().GetResult();
    }

    /// <summary>Waits for the child to end; true when it has, false when <paramref name="timeout"/> passed first (null: no limit).</summary>
    [Obsolete("Use Join() or Join(TimeSpan) (false when the timeout passed first), or Join(CancellationToken).")]
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Never)]
    public bool Join(TimeSpan? timeout = null)
    {
        if (timeout is TimeSpan limit)
        {
            return Join(limit);
        }

        Join();
        return true;
    }

    /// <summary>Completes when the child has ended.</summary>
    public async Task JoinAsync(CancellationToken cancellationToken = default)
    {
        await _process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        ChildEnded();
    }

    /// <summary>
    /// The child is gone: what it created and nobody else maps (a queue it never disposed, because it was killed)
    /// is removed now rather than at the next sweep (see <see cref="ShmMaintenance.RemoveStaleSegments"/>).
    /// </summary>
    private void ChildEnded()
    {
        if (Interlocked.Exchange(ref _endSeen, 1) == 0)
        {
            ShmQueueContract.ChildEnded();
        }
    }

    /// <summary>Sends SIGTERM: the child ends (exit code -15) unless its code handles the signal.</summary>
    public void Terminate()
    {
        if (!_process.HasExited)
        {
            _ = ShmQueueContract.Terminate(Pid); // false: it ended meanwhile
        }
    }

    /// <summary>Sends SIGKILL: the child ends at once (exit code -9).</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _ = ShmQueueContract.Kill(Pid); // false: it ended meanwhile
        }
    }

    /// <summary>Kills the child if it still runs, waits for it, and removes the pipe.</summary>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the process and the pipe.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing || Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_process.HasExited)
        {
            Kill();
        }

        _process.WaitForExit();
        lock (_lock)
        {
            _channel.Dispose();
        }

        s_children.TryRemove(this, out _);
        _process.Dispose();
        ChildEnded();
    }

    /// <summary>
    /// Once per process, on the first child: at a normal exit, wait for the children that are not daemons (as Python
    /// joins them), then end the rest and remove every child's pipe; on an unhandled exception, end them all at once.
    /// A process that exits without disposing its children leaves nothing behind either way.
    /// </summary>
    private static void InstallExitHandler()
    {
        if (Interlocked.Exchange(ref s_exitHandlerInstalled, 1) != 0)
        {
            return;
        }

        // A SIGTERM also ends in ProcessExit: then the parent is being stopped, not exiting by itself, and it must not
        // hang on its non-daemon children (they are ended with it, as a killed parent's are).
        s_sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM,
            static _ => Volatile.Write(ref s_terminating, 1));
        AppDomain.CurrentDomain.ProcessExit += static (_, _) => EndChildren(waitForNonDaemons: Volatile.Read(ref s_terminating) == 0);
        AppDomain.CurrentDomain.UnhandledException += static (_, _) => EndChildren(waitForNonDaemons: false);
    }

    private static void EndChildren(bool waitForNonDaemons)
    {
        foreach (ShmProcess child in s_children.Keys)
        {
            try
            {
                if (waitForNonDaemons && !child.Daemon)
                {
                    child._process.WaitForExit();
                }

                child.Dispose();
            }
#pragma warning disable CA1031 // On the way out: one child that cannot be ended must not keep the others' pipes in /dev/shm.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    /// <summary>The child's Returned message, received once; null when it has not come within <paramref name="timeout"/>.</summary>
    /// <exception cref="ShmWorkerCrashedException">The child ended without sending it.</exception>
    private protected byte[]? TryTakeOutcome(TimeSpan timeout)
    {
        lock (_lock)
        {
            if (_outcome is not null || _disposed != 0)
            {
                return _outcome;
            }

            try
            {
                if (_channel.TryReceive(out byte[]? message, timeout))
                {
                    _outcome = message;
                }
            }
            catch (ShmPeerClosedException)
            {
                return null;
            }

            return _outcome;
        }
    }

    /// <summary>How long one receive of the outcome waits before a cancellable wait looks at its token again.</summary>
    private static readonly TimeSpan CancellableSlice = TimeSpan.FromMilliseconds(10);

    /// <summary>How long one receive of the outcome waits before the wait asks the OS whether the child ended.</summary>
    private static readonly TimeSpan ExitCheckSlice = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Waits for the outcome until <paramref name="timeout"/> or <paramref name="cancellationToken"/>; null when the time is up;
    /// throws when the child ended without one.
    /// </summary>
    private protected byte[]? TryWaitForOutcome(TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        long started = Stopwatch.GetTimestamp();
        TimeSpan slice = cancellationToken.CanBeCanceled ? CancellableSlice : ExitCheckSlice;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TimeSpan left = timeout == Timeout.InfiniteTimeSpan ? slice : timeout - Stopwatch.GetElapsedTime(started);
            byte[]? outcome = TryTakeOutcome(left < TimeSpan.Zero ? TimeSpan.Zero : left < slice ? left : slice);
            if (outcome is not null)
            {
                return outcome;
            }

            if (_process.HasExited)
            {
                // The message, if any, was sent before the exit: one last look, then it is a crash.
                outcome = TryTakeOutcome(TimeSpan.Zero);
                return outcome ?? throw new ShmWorkerCrashedException(Pid, ExitCode);
            }

            if (timeout != Timeout.InfiniteTimeSpan && Stopwatch.GetElapsedTime(started) >= timeout)
            {
                return null;
            }
        }
    }

    private static (Process Process, ChildChannel Channel, string Name) Launch(Delegate target, Type declaredArgument, object? arg, bool hasResult, ShmProcessOptions? options)
    {
        TargetMethod method = TargetMethod.From(target, nameof(target));
        options ??= ShmProcessOptions.Default;
        IShmObjectSerializer serializer = options.Serializer ?? ShmMessagePackSerializer.Instance;
        string serializerName = SerializerFactory.Describe(serializer, nameof(options));
        Type argumentType = ResolvedTarget.WireArgumentTypeOrNull(target.Method) ?? declaredArgument;

        int n = Interlocked.Increment(ref s_counter);
        string name = options.Name ?? $"ShmProcess-{n}";
        ProcessIdentity me = ShmQueueContract.CurrentProcess;
        string pipeName = $"shmpool-{me.Pid}-{me.StartTime}-p{n}";

        var writer = new MessageWriter();
        writer.Reset(MessageKind.Run).WriteString(serializerName);
        writer.WriteTarget(method);
        writer.WriteByte(hasResult ? (byte)1 : (byte)0);
        writer.WriteLengthPrefixed((serializer, argumentType, arg), static (s, w) => s.serializer.Serialize(s.argumentType, s.arg, w));

        (Process process, ChildChannel channel) = ChildLauncher.StartWithChannel(pipeName, $"{name}:{method.DisplayName}", options.Environment, options.WaitStrategy, writer.Written);
        return (process, channel, name);
    }

    /// <summary>ShmWait: ready once the child has exited (Python's <c>Process.sentinel</c>).</summary>
    bool IShmWaitable.PollReady()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _process.HasExited;
    }

    /// <summary>"ShmProcess-1 (pid 1234, running)".</summary>
    public override string ToString() =>
        $"{Name} (pid {Pid.ToString(CultureInfo.InvariantCulture)}, {(IsAlive ? "running" : ShmWorkerCrashedException.DescribeExit(ExitCode))})";
}

/// <summary>A <see cref="ShmProcess"/> whose target returns a value.</summary>
/// <typeparam name="TResult">The target's return type.</typeparam>
public sealed class ShmProcess<TResult> : ShmProcess
{
    private readonly Type _resultType;
    private readonly IShmObjectSerializer _serializer;

    internal ShmProcess(Process process, ChildChannel channel, string name, bool daemon, Type resultType, IShmObjectSerializer serializer)
        : base(process, channel, name, daemon)
    {
        _resultType = resultType;
        _serializer = serializer;
    }

    /// <summary>Waits, with no time limit, for the target to return, and returns its result.</summary>
    /// <exception cref="ShmRemoteException">The target threw; carries the original type name, message and stack trace.</exception>
    /// <exception cref="ShmWorkerCrashedException">The child ended without a result (killed, crashed, exited).</exception>
    public TResult GetResult() => Decode(TryWaitForOutcome(Timeout.InfiniteTimeSpan, CancellationToken.None)!);

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the target to return, and returns its result. The child
    /// keeps running after a timeout; call again to keep waiting.
    /// </summary>
    /// <exception cref="ShmRemoteException">The target threw; carries the original type name, message and stack trace.</exception>
    /// <exception cref="ShmWorkerCrashedException">The child ended without a result (killed, crashed, exited).</exception>
    /// <exception cref="TimeoutException">No result within <paramref name="timeout"/>.</exception>
    public TResult GetResult(TimeSpan timeout) =>
        TryGetResult(out TResult result, timeout)
            ? result
            : throw new TimeoutException($"{Name} (pid {Pid}) did not return within {timeout.TotalMilliseconds:0} ms; it still runs.");

    /// <summary>
    /// Waits for the target to return until <paramref name="cancellationToken"/> is cancelled. A cancelled wait leaves the
    /// child running; call again to keep waiting.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="ShmRemoteException">The target threw; carries the original type name, message and stack trace.</exception>
    /// <exception cref="ShmWorkerCrashedException">The child ended without a result (killed, crashed, exited).</exception>
    public TResult GetResult(CancellationToken cancellationToken) => Decode(TryWaitForOutcome(Timeout.InfiniteTimeSpan, cancellationToken)!);

    /// <summary>Waits up to <paramref name="timeout"/> for the target to return; false (the child still running) if it has not.</summary>
    /// <exception cref="ShmRemoteException">The target threw; carries the original type name, message and stack trace.</exception>
    /// <exception cref="ShmWorkerCrashedException">The child ended without a result (killed, crashed, exited).</exception>
    public bool TryGetResult(out TResult result, TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "A timeout is zero or more, or Timeout.InfiniteTimeSpan.");
        }

        if (TryWaitForOutcome(timeout, CancellationToken.None) is not byte[] outcome)
        {
            result = default!;
            return false;
        }

        result = Decode(outcome);
        return true;
    }

    /// <summary>Completes with the target's result once the child has ended; a cancelled <paramref name="cancellationToken"/> ends the wait, not the child.</summary>
    /// <remarks>
    /// No thread waits meanwhile: it awaits the child's exit (as <see cref="ShmProcess.JoinAsync"/>), then takes the result the
    /// child sent before it exited. A child returns and exits at once, unless its target left foreground threads running.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="ShmRemoteException">The target threw; carries the original type name, message and stack trace.</exception>
    /// <exception cref="ShmWorkerCrashedException">The child ended without a result (killed, crashed, exited).</exception>
    public async Task<TResult> GetResultAsync(CancellationToken cancellationToken = default)
    {
        await JoinAsync(cancellationToken).ConfigureAwait(false);
        return Decode(TryWaitForOutcome(TimeSpan.Zero, CancellationToken.None)!);
    }

    private TResult Decode(byte[] outcome)
    {
        var reader = new MessageReader(outcome);
        if (reader.ReadKind() != MessageKind.Returned)
        {
            throw new InvalidDataException($"{Name} (pid {Pid}) sent something other than its result.");
        }

        if (reader.ReadByte() != 0)
        {
            throw reader.ReadError().ToException();
        }

        return (TResult)_serializer.Deserialize(_resultType, reader.ReadBytes())!;
    }
}
