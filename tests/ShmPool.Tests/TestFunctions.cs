using System.Runtime.InteropServices;

namespace ShmIpc.Pool.Tests;

public sealed record Order(int Id, string Customer, List<decimal> Lines);

public sealed record Invoice(int OrderId, decimal Total, string Note);

[StructLayout(LayoutKind.Sequential)]
public struct Vec3
{
    public double X;
    public double Y;
    public double Z;
}

/// <summary>The functions the tests run in child processes: static methods of the test assembly.</summary>
public static class TestFunctions
{
    private static int s_initialized;

    public static int Square(int x) => x * x;

    public static long Add(int a, long b) => a + b;

    public static string Join3(string a, int b, double c) => $"{a}|{b}|{c}";

    public static Invoice Bill(Order order) => new(order.Id, order.Lines.Sum(), $"for {order.Customer}");

    public static Vec3 Scale(Vec3 v) => new() { X = v.X * 2, Y = v.Y * 2, Z = v.Z * 2 };

    public static int Pid(int ignored) => Environment.ProcessId;

    public static DayOfWeek Tomorrow(DayOfWeek day) => (DayOfWeek)(((int)day + 1) % 7);

    public static int? Half(int? x) => x is int v && v % 2 == 0 ? v / 2 : null;

    public static Vec3 Spread(double x) => new() { X = x, Y = -x, Z = x * x };

    public static void DoNothing(int ignored)
    {
    }

    public static void DoNothing(byte[] ignored)
    {
    }

    public static int ExitWith(int code)
    {
        Environment.Exit(code);
        return 0;
    }

    public static int Throw(string message) => throw new InvalidOperationException(message);

    /// <summary>Creates queue <paramref name="name"/>, never disposes it, and waits to be killed.</summary>
    public static void CreateQueueAndWait(string name)
    {
        _ = ShmQueue.Create(name);
        new ManualResetEventSlim().Wait();
    }

    /// <summary>Creates queue <paramref name="name"/> to be kept after its creator leaves, and waits to be killed.</summary>
    public static void CreateKeptQueueAndWait(string name)
    {
        _ = ShmQueue.Create(name, new ShmQueueOptions { UnlinkOnDispose = false });
        new ManualResetEventSlim().Wait();
    }

    /// <summary>Replaces Console.Error with a buffered writer to <paramref name="path"/>, writes to it, and throws.</summary>
    public static int BufferedErrorThenThrow(string path)
    {
        Console.SetError(new StreamWriter(path) { AutoFlush = false });
        Console.Error.Write("written before the crash");
        throw new InvalidOperationException("the target failed");
    }

    /// <summary>Replaces Console.Out with a buffered writer to <paramref name="path"/>, writes to it, says so, and waits to be terminated.</summary>
    public static void BufferedOutThenWait(string path)
    {
        Console.SetOut(new StreamWriter(path) { AutoFlush = false });
        Console.Out.Write("written before SIGTERM");
        File.WriteAllText(path + ".ready", "");
        new ManualResetEventSlim().Wait();
    }

    /// <summary>Throws for 13 and for 9,000 (with their value in the message), squares the rest; 9,000 fails first (13 waits a bit).</summary>
    public static int ThrowOnTwo(int x)
    {
        if (x == 13)
        {
            Thread.Sleep(50);
        }

        return x is 13 or 9_000 ? throw new ArgumentException($"item {x}") : x * x;
    }

    /// <summary>Throws for item 0; blocks until killed for item 3 (writing its pid to the path); squares the rest.</summary>
    public static int ThrowFirstBlockLater((int X, string Path) item) => item.X switch
    {
        0 => throw new ArgumentException("item 0"),
        3 => BlockForever(item.Path),
        _ => item.X * item.X,
    };

    public static int ThrowIfThirteen(int x) => x == 13 ? throw new ArgumentException("thirteen is unlucky") : x * x;

    /// <summary>Writes its pid to <paramref name="path"/>, then blocks until killed.</summary>
    public static int BlockForever(string path)
    {
        File.WriteAllText(path, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        new ManualResetEventSlim().Wait();
        return 0;
    }

    /// <summary>Squares, except item 13, which reports its pid to <paramref name="item"/>.Path and blocks.</summary>
    public static int SquareOrBlock((int X, string Path) item) => item.X == 13 ? BlockForever(item.Path) : item.X * item.X;

    /// <summary>Kills its own process the first time (marker file absent), succeeds the second.</summary>
    public static int CrashOnce(string marker)
    {
        if (!File.Exists(marker))
        {
            File.WriteAllText(marker, "crashed");
            Environment.FailFast("crashing on purpose");
        }

        return 42;
    }

    /// <summary>The worker's environment variable naming <see cref="CrashOnceOn"/>'s marker file.</summary>
    public const string CrashMarkerVariable = "SHMPOOL_TEST_CRASH_MARKER";

    /// <summary>Twice <paramref name="value"/>; the first worker to see 12,345 dies (SIGABRT) instead, leaving a marker file.</summary>
    public static int CrashOnceOn(int value)
    {
        if (value == 12_345 && System.Environment.GetEnvironmentVariable(CrashMarkerVariable) is string marker && !File.Exists(marker))
        {
            File.WriteAllText(marker, "crashed");
            System.Environment.FailFast("crashing on purpose");
        }

        return value * 2;
    }

    public static void Initialize() => Interlocked.Increment(ref s_initialized);

    private static string? s_initializedWith;

    public static void InitializeWith((string Greeting, int Times) argument) => s_initializedWith = string.Concat(Enumerable.Repeat(argument.Greeting, argument.Times));

    public static string InitializedWith(int ignored) => s_initializedWith ?? "(not initialized)";

    public static string Join7(int a, string b, double c, long d, bool e, char f, byte g) => $"{a}|{b}|{c}|{d}|{e}|{f}|{g}";

    private static System.Diagnostics.ActivityListener? s_listener;

    /// <summary>A worker initializer that listens to ShmIpc's activities, as an app with OpenTelemetry would.</summary>
    public static void ListenToShmIpcActivities()
    {
        s_listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = static source => source.Name == ShmTelemetry.MeterName,
            Sample = static (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(s_listener);
    }

    /// <summary>The worker's current span: (its name, its parent's id).</summary>
    public static (string? Name, string? ParentId) CurrentSpan(int ignored) =>
        (System.Diagnostics.Activity.Current?.OperationName, System.Diagnostics.Activity.Current?.ParentId);

    /// <summary>What the child sees of itself.</summary>
    public static (string Name, int Pid, bool IsChild, int? ParentPid, bool IsPoolWorker) Describe(int ignored)
    {
        ShmProcessInfo me = ShmProcess.Current;
        return (me.Name, me.Pid, me.IsChild, me.ParentPid, me.IsPoolWorker);
    }

    /// <summary>Waits to be killed.</summary>
    public static void WaitForever(int ignored) => new ManualResetEventSlim().Wait();

    /// <summary>(pid, how many times the initializer ran in this process).</summary>
    public static (int Pid, int Initialized) InitState(int ignored) => (Environment.ProcessId, Volatile.Read(ref s_initialized));
}

/// <summary>Child sides of the handle-passing tests.</summary>
public static class HandleFunctions
{
    /// <summary>The message <see cref="SayHello"/> sends from process <paramref name="pid"/> (long enough to show a torn one).</summary>
    public static string Hello(int pid) => $"hello from process {pid}, " + new string('x', 200);

    /// <summary>Sends one message on the (shared) pipe end it was given, closes its copy, returns its pid.</summary>
    public static int SayHello(ShmConnection connection)
    {
        using (connection)
        {
            connection.Send(System.Text.Encoding.UTF8.GetBytes(Hello(System.Environment.ProcessId)));
            return System.Environment.ProcessId;
        }
    }

    /// <summary>Receives one message on the pipe end it was given and sends it back doubled.</summary>
    public static int EchoTwice(ShmConnection connection)
    {
        using (connection)
        {
            byte[] message = connection.Receive();
            connection.Send([.. message, .. message]);
            return message.Length;
        }
    }

    /// <summary>Adds its count to the shared value under the value's lock, counts on the counter, then sets the event.</summary>
    public static int CountShared((ShmValue<long> Value, ShmCounter Counter, ShmEvent Done, int Count) arg)
    {
        using (arg.Value)
        using (arg.Counter)
        using (arg.Done)
        {
            for (int i = 0; i < arg.Count; i++)
            {
                using (arg.Value.Lock.Hold())
                {
                    arg.Value.Value++;
                }

                arg.Counter.Increment();
            }

            arg.Done.Set();
            return arg.Count;
        }
    }

    /// <summary>A producer process, as in Python's tutorial: puts 0..count-1 on the queue it was given.</summary>
    public static int Produce((ShmQueue<int> Queue, int Count) arg)
    {
        using (arg.Queue)
        {
            for (int i = 0; i < arg.Count; i++)
            {
                arg.Queue.Enqueue(i);
            }

            return arg.Count;
        }
    }

    /// <summary>Puts its tag on the typed queue three times and a marker on the byte queue.</summary>
    public static int PutTagged((string Tag, ShmQueue<string> Queue) arg)
    {
        using (arg.Queue)
        {
            for (int i = 0; i < 3; i++)
            {
                arg.Queue.Enqueue($"{arg.Tag} {i}");
            }

            return Environment.ProcessId;
        }
    }

    /// <summary>An untyped queue alone: puts one 3-byte message.</summary>
    public static int PutBytes(ShmQueue queue)
    {
        using (queue)
        {
            queue.Enqueue([1, 2, 3]);
            return 3;
        }
    }

    /// <summary>
    /// Serves commands from the first queue until told to stop: 1 puts the byte 42 on the second queue, 0 returns
    /// (the process exits). A child that becomes ready for ShmWait in two ways, each on the parent's word.
    /// </summary>
    public static int ServeCommands((ShmQueue Commands, ShmQueue Output) arg)
    {
        using (arg.Commands)
        using (arg.Output)
        {
            int served = 0;
            while (arg.Commands.Dequeue() is [1])
            {
                arg.Output.Enqueue([42]);
                served++;
            }

            return served;
        }
    }

    /// <summary>The same, with the end inside a tuple.</summary>
    public static string EchoTagged((string Tag, ShmConnection Connection) arg)
    {
        using (arg.Connection)
        {
            byte[] message = arg.Connection.Receive();
            arg.Connection.Send(message);
            return arg.Tag;
        }
    }
}

public static class FailingInitializer
{
    public static void Initialize() => throw new InvalidOperationException("no database today");
}
