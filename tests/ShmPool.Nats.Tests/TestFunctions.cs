using System.Diagnostics;

namespace ShmIpc.Nats.Tests;

/// <summary>The functions the tests run in NATS pool workers: static, so a worker process finds them by token.</summary>
public static class TestFunctions
{
    public static int Square(int x) => x * x;

    public static int Add(int a, int b) => a + b;

    /// <summary>The square of <paramref name="x"/>, after 5 ms: a Map of these lasts long enough to break something in its middle.</summary>
    public static int SlowSquare(int x)
    {
        Thread.Sleep(5);
        return x * x;
    }

    public static int WhoAmI(int _) => Environment.ProcessId;

    public static string Echo(string s) => s;

    public static int LengthOf(string s) => s.Length;

    public static string Letters(int count) => new('y', count);

    public static int Throws(int x) => throw new InvalidOperationException($"no good: {x}");

    public static int SleepMs(int ms)
    {
        Thread.Sleep(ms);
        return ms;
    }

    /// <summary>Burns about <paramref name="ms"/> milliseconds of CPU.</summary>
    public static long Spin(int ms)
    {
        long end = Stopwatch.GetTimestamp() + (ms * Stopwatch.Frequency / 1000);
        long n = 0;
        while (Stopwatch.GetTimestamp() < end)
        {
            n++;
        }

        return n;
    }

    /// <summary>
    /// The first worker to run it claims <paramref name="directory"/>/claimed (created exclusively), publishes its pid as
    /// <paramref name="directory"/>/pid and hangs; any later one returns its pid. The pid file appears whole (written
    /// under another name, closed, then renamed): a reader never meets it half written or still open, which on Unix
    /// .NET holds an exclusive lock that makes a concurrent read throw.
    /// </summary>
    public static int HangFirstTime(string directory)
    {
        try
        {
            File.Open(Path.Combine(directory, "claimed"), FileMode.CreateNew).Dispose();
        }
        catch (IOException)
        {
            return Environment.ProcessId;
        }

        string staging = Path.Combine(directory, $"pid.{Environment.ProcessId}");
        File.WriteAllText(staging, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.Move(staging, Path.Combine(directory, "pid"));

        Thread.Sleep(TimeSpan.FromMinutes(2));
        return -1;
    }

    /// <summary>Records a run in the file, then sleeps the given time (several heartbeat lapses).</summary>
    public static int SlowOnce((string File, int Milliseconds) task)
    {
        File.AppendAllText(task.File, $"{Environment.ProcessId}{Environment.NewLine}");
        Thread.Sleep(task.Milliseconds);
        return Environment.ProcessId;
    }

    /// <summary>Kills its own worker with SIGKILL, every time.</summary>
    public static int KillMyWorker(int _)
    {
        Process.GetCurrentProcess().Kill();
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }

    public static Picky MakePicky(int value) => Picky.Unchecked(value);
}

/// <summary>A result that serializes in the worker but does not deserialize in the caller when negative.</summary>
public sealed class Picky
{
    private int _value;

    public int Value
    {
        get => _value;
        set => _value = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), "Picky values are never negative.");
    }

    public static Picky Unchecked(int value) => new() { _value = value };
}
