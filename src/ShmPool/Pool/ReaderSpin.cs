using System.Diagnostics;

namespace ShmIpc.Pool;

/// <summary>
/// Whether a worker's reader thread spins before it sleeps for the next result. Spinning pays when results
/// come within the spin (short tasks: no wake-up on the reader's side); with long tasks every spin is wasted,
/// on a core the workers need (a Map of 1 ms items spent ~50 us of reader spin per item, ~5% of a core per
/// worker, which is most of what kept two workers from scaling 2x on a 2-core machine). So: after
/// <see cref="MissesToStop"/> spins in a row that ended asleep anyway, the reader sleeps at once, spinning
/// again now and then (a probe) to notice when the tasks get short again: one receive in <see cref="FirstProbeEvery"/>,
/// and half as often after each probe that missed too, down to one in <see cref="LastProbeEvery"/>.
/// </summary>
/// <remarks>
/// Used by the reader thread only (no synchronisation).
/// Why the probes back off: with a fixed one-in-16, the probes' spins (each yielding the core in a loop for the spin
/// budget) were ~7 % of the readers' CPU in a CPU-bound Map on Pool(8) on 2 cores (perf, 2026-12-07_cpubound.md), CPU
/// taken from the workers. Backed off, they cost ~1/16 of that; a return to short tasks is noticed within
/// <see cref="LastProbeEvery"/> results (a few ms of short tasks), and one probe that pays restores spinning at once.
/// </remarks>
internal sealed class ReaderSpin
{
    private const int MissesToStop = 4;
    private const int FirstProbeEvery = 16;
    private const int LastProbeEvery = 256;

    private readonly long _spinTicks;
    private int _misses;
    private int _receives;
    private int _probeEvery = FirstProbeEvery;

    public ReaderSpin(TimeSpan spin)
    {
        _spinTicks = (long)(spin.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>Spin before sleeping on the next receive?</summary>
    public bool ShouldSpin
    {
        get
        {
            if (_misses < MissesToStop || ++_receives >= _probeEvery)
            {
                _receives = 0;
                return true;
            }

            return false;
        }
    }

    /// <summary>A receive that <paramref name="spun"/> got its message after <paramref name="waitedTicks"/>.</summary>
    public void Observe(bool spun, long waitedTicks)
    {
        if (!spun)
        {
            return;
        }

        if (waitedTicks <= _spinTicks)
        {
            _misses = 0;
            _probeEvery = FirstProbeEvery;
        }
        else if (++_misses > MissesToStop)
        {
            // A probe that missed: probe half as often.
            _misses = MissesToStop;
            _probeEvery = Math.Min(_probeEvery * 2, LastProbeEvery);
        }
    }
}
