using System.Diagnostics;

namespace ShmIpc.Pool;

/// <summary>
/// Whether a worker's reader thread spins before it sleeps for the next result. Spinning pays when results
/// come within the spin (short tasks: no wake-up on the reader's side); with long tasks every spin is wasted,
/// on a core the workers need (a Map of 1 ms items spent ~50 us of reader spin per item, ~5% of a core per
/// worker, which is most of what kept two workers from scaling 2x on a 2-core machine). So: after
/// <see cref="MissesToStop"/> spins in a row that ended asleep anyway, the reader sleeps at once, spinning
/// again one receive in <see cref="ProbeEvery"/> to notice when the tasks get short again.
/// </summary>
/// <remarks>Used by the reader thread only (no synchronisation).</remarks>
internal sealed class ReaderSpin
{
    private const int MissesToStop = 4;
    private const int ProbeEvery = 16;

    private readonly long _spinTicks;
    private int _misses;
    private int _receives;

    public ReaderSpin(TimeSpan spin)
    {
        _spinTicks = (long)(spin.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>Spin before sleeping on the next receive?</summary>
    public bool ShouldSpin => _misses < MissesToStop || ++_receives % ProbeEvery == 0;

    /// <summary>A receive that <paramref name="spun"/> got its message after <paramref name="waitedTicks"/>.</summary>
    public void Observe(bool spun, long waitedTicks)
    {
        if (spun)
        {
            _misses = waitedTicks > _spinTicks ? _misses + 1 : 0;
        }
    }
}
