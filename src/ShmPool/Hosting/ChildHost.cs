using ShmIpc.Diagnostics;
using ShmIpc.Internal;
using ShmIpc.Protocol;

namespace ShmIpc.Hosting;

/// <summary>
/// The entry point of every child process: <c>ShmPool.dll --shmpool-child &lt;pipe&gt; &lt;parent pid&gt; &lt;parent start time&gt; &lt;name&gt;</c>.
/// It arms the parent watchdog, connects to its pipe and reads the first message: <see cref="MessageKind.Run"/>
/// makes it a <see cref="ShmProcess"/> child (run one target, report, exit), <see cref="MessageKind.Init"/> a pool worker.
/// </summary>
internal static class ChildHost
{
    /// <summary>Exit code of a process child whose target threw (as in Python).</summary>
    public const int TargetFailedExitCode = 1;

    /// <summary>Exit code when the command line is not a child's.</summary>
    public const int UsageExitCode = 2;

    /// <summary>What this child is (<see cref="ShmProcess.Current"/>); null in a process ShmIpc did not start.</summary>
    internal static ShmProcessInfo? Current { get; private set; }

    private static string s_displayName = "";
    private static int s_parentPid;

    public static int Main(string[] args)
    {
        if (args.Length != 5 || args[0] != ChildLauncher.ChildSwitch)
        {
            Console.Error.WriteLine("ShmPool.dll is a library. It runs as an entry point only as the child process of ShmProcess or ShmPool.");
            return UsageExitCode;
        }

        StartTimeline.Mark("main");

        // Creating ShmIpc's meter (the process's first) costs 20-30 ms: not on the way to Ready. A worker creates it in
        // the background after its first result, a process child as its target starts (WorkerLoop, RunTarget).
        ShmMetrics.Defer();
        string pipeName = args[1];
        // Digits parsed by hand: int.Parse with CultureInfo.InvariantCulture made the runtime load ICU (libicuuc, libicui18n:
        // 5-12 ms of a worker's start) before anything needed a culture.
        var parent = new ProcessIdentity((int)ParseDecimal(args[2], int.MaxValue), ParseDecimal(args[3], ulong.MaxValue));
        // Whatever the user's code put in Console.Out/Error (a buffered writer of its own included) reaches its
        // destination however the child ends short of SIGKILL: a return, a throw, Environment.Exit, SIGTERM.
        AppDomain.CurrentDomain.ProcessExit += static (_, _) => FlushStandardStreams();
        AppDomain.CurrentDomain.UnhandledException += static (_, _) => FlushStandardStreams();
        s_displayName = args[4];
        s_parentPid = parent.Pid;
        ParentWatchdog.Arm(parent, () => ChildChannel.Unlink(pipeName));
        StartTimeline.Mark("watchdog-armed");
        ShmQueueContract.LeaveSweepsToParent(); // the parent sweeps when a child ends and every interval; 200 children listing /dev/shm on connect made pool start super-linear

        try
        {
            return Serve(pipeName, parent);
        }
        finally
        {
            StartTimeline.Flush();
            FlushStandardStreams();

            // The pipe says the parent is gone: if it died, nobody else will remove the pipe's names.
            if (!ShmQueueContract.IsAlive(parent))
            {
                ParentWatchdog.RunCleanup();
            }
        }
    }

    /// <summary>Parses the decimal digits of a number the parent wrote (a pid, a start time), with no culture involved.</summary>
    /// <exception cref="FormatException">Not a decimal number up to <paramref name="max"/>.</exception>
    internal static ulong ParseDecimal(string text, ulong max)
    {
        if (text.Length == 0)
        {
            throw new FormatException("A child's command line holds an empty number.");
        }

        ulong value = 0;
        foreach (char c in text)
        {
            ulong digit = (ulong)(c - '0');
            if (digit > 9 || value > (max - digit) / 10)
            {
                throw new FormatException($"A child's command line holds '{text}' where a number up to {max} belongs.");
            }

            value = (value * 10) + digit;
        }

        return value;
    }

    /// <summary>Flushes Console.Out and Console.Error, as CPython's child bootstrap does; never throws.</summary>
    internal static void FlushStandardStreams()
    {
        foreach (TextWriter writer in (ReadOnlySpan<TextWriter>)[Console.Out, Console.Error])
        {
            try
            {
                writer.Flush();
            }
#pragma warning disable CA1031 // Best effort on the way out: a writer that cannot flush must not hide the real outcome.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private static int Serve(string pipeName, ProcessIdentity parent)
    {
        if (ConnectWhenCreated(pipeName, parent) is not ChildChannel connected)
        {
            return 0; // the parent is gone before it made our pipe
        }

        StartTimeline.Mark("connected");
        using ChildChannel channel = connected;
        byte[] first;
        try
        {
            first = channel.Receive();
        }
        catch (ShmPeerClosedException)
        {
            return 0; // the parent gave up on us before saying anything
        }

        StartTimeline.Mark("first-message");
        var reader = new MessageReader(first);
        MessageKind firstKind = reader.ReadKind();

        // A process child's display name is "name:method"; a worker's is its name.
        int colon = s_displayName.LastIndexOf(':');
        string name = firstKind == MessageKind.Run && colon > 0 ? s_displayName[..colon] : s_displayName;
        Current = new ShmProcessInfo(name, Environment.ProcessId, s_parentPid, isPoolWorker: firstKind == MessageKind.Init);
        return firstKind switch
        {
            MessageKind.Run => RunTarget(channel, ref reader),
            MessageKind.Init => new WorkerLoop(channel).Run(ref reader),
            MessageKind kind => throw new InvalidDataException($"A child's first message must be Run or Init, not {kind}."),
        };
    }

    /// <summary>
    /// Connects to the pipe, waiting for it to appear: the parent starts the child first and creates the pipe right
    /// after (ChildLauncher.StartWithChannel), so the pipe's creation overlaps the child's runtime start. The child waits
    /// as long as its parent lives, with no time limit of its own: on a machine busy starting many children (Pool(200)
    /// on 2 cores), a parent may take long to get there, and a child that gave up would be a worker killed for being
    /// slow. Null when the parent died first (then nobody will make the pipe).
    /// </summary>
    private static ChildChannel? ConnectWhenCreated(string pipeName, ProcessIdentity parent)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return ChildChannel.Connect(pipeName);
            }
            catch (FileNotFoundException)
            {
                if (!ShmQueueContract.IsAlive(parent))
                {
                    return null;
                }

                Thread.Sleep(attempt < 100 ? 1 : 10);
            }
        }
    }

    private static int RunTarget(ChildChannel channel, ref MessageReader reader)
    {
        ShmMetrics.CreateInBackground();
        ParentWatchdog.StartFallbackPoll();
        var writer = new MessageWriter();
        Exception? failure = null;
        try
        {
            IShmObjectSerializer serializer = SerializerFactory.Create(reader.ReadRequiredString());
            ResolvedTarget target = reader.ReadTarget().Resolve();
            bool hasResult = reader.ReadByte() != 0;
            ReadOnlyMemory<byte> argumentBytes = reader.ReadBytes();
            object? argument = serializer.Deserialize(target.ArgumentType, argumentBytes);
            object? result = target.Invoke(argument);
            writer.Reset(MessageKind.Returned).WriteByte(0);
            if (hasResult)
            {
                writer.WriteLengthPrefixed((serializer, target.Method.ReturnType, result),
                    static (s, w) => s.serializer.Serialize(s.ReturnType, s.result, w));
            }
            else
            {
                writer.WriteBytes(default);
            }
        }
#pragma warning disable CA1031 // The child reports any exception of the target to its parent.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failure = e;
            writer.Reset(MessageKind.Returned).WriteByte(1);
            writer.WriteError(RemoteError.From(e));
        }

        try
        {
            channel.Send(writer.Written);
        }
        catch (ShmPeerClosedException)
        {
            // Nobody waits for the outcome any more.
        }

        if (failure is not null)
        {
            // Like Python's multiprocessing: the traceback goes to the child's standard error too.
            Console.Error.WriteLine($"ShmProcess child {Environment.ProcessId}: {failure}");
            return TargetFailedExitCode;
        }

        return 0;
    }
}
