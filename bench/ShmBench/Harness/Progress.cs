using System.Diagnostics;

namespace ShmIpc.Bench.Harness;

/// <summary>
/// The progress line: "[2/5 queue] step: detail (12 s)". On a terminal it is one line on stderr,
/// redrawn in place; otherwise (CI logs, pipes) each step is a plain line and details are dropped, so
/// stdout carries only results.
/// </summary>
internal sealed class Progress
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _live = !Console.IsErrorRedirected;
    private readonly Lock _lock = new();
    private string _prefix = "";
    private string _step = "";
    private int _drawn;

    /// <summary>Starts the next stage: "[index/total name]".</summary>
    public void Stage(int index, int total, string name) => _prefix = $"[{index}/{total} {name}]";

    /// <summary>A new step inside the stage.</summary>
    public void Step(string what)
    {
        lock (_lock)
        {
            _step = what;
            if (_live)
            {
                Draw(what);
            }
            else
            {
                Console.Error.WriteLine($"{_prefix} {what} ({_clock.Elapsed.TotalSeconds:0} s)");
            }
        }
    }

    /// <summary>Finer progress within a step (a run number); shown only on a terminal.</summary>
    public void Detail(string what)
    {
        if (_live)
        {
            lock (_lock)
            {
                Draw($"{_step}: {what}");
            }
        }
    }

    /// <summary>A line of output to stdout that must not be overdrawn by the progress line.</summary>
    public void Line(string text)
    {
        lock (_lock)
        {
            Clear();
            Console.Out.WriteLine(text);
            Console.Out.Flush();
        }
    }

    /// <summary>Removes the progress line (before the final tables).</summary>
    public void Done()
    {
        lock (_lock)
        {
            Clear();
        }
    }

    public TimeSpan Elapsed => _clock.Elapsed;

    private void Draw(string text)
    {
        string line = $"{_prefix} {text} ({_clock.Elapsed.TotalSeconds:0} s)";
        int width = Math.Max(40, SafeWidth() - 1);
        if (line.Length > width)
        {
            line = line[..width];
        }

        Console.Error.Write("\r" + line.PadRight(_drawn));
        _drawn = line.Length;
    }

    private void Clear()
    {
        if (_live && _drawn > 0)
        {
            Console.Error.Write("\r" + new string(' ', _drawn) + "\r");
            _drawn = 0;
        }
    }

    private static int SafeWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 100;
        }
        catch (IOException)
        {
            return 100;
        }
    }
}
