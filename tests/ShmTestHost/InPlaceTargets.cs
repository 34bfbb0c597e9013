using System.Diagnostics;

namespace ShmIpc.TestHost;

/// <summary>
/// Functions the in-place and shared-argument pool tests run in worker processes (ShmPool.Tests' InPlaceTests and
/// SharedArgumentTests). Shared objects they need besides their arguments are named by environment variables, which the
/// tests set through <see cref="ShmPoolOptions.Environment"/>.
/// </summary>
public static class InPlaceTargets
{
    /// <summary>The environment variable naming the ShmCounter that <see cref="TwoXPlusOneDyingOnce"/> counts marker sightings in.</summary>
    public const string KillCounterVariable = "SHMIPC_TEST_KILL_COUNTER";

    /// <summary>The environment variable naming the ShmEvent that <see cref="WaitForGate"/> waits on.</summary>
    public const string GateVariable = "SHMIPC_TEST_GATE";

    /// <summary>The input value at which <see cref="TwoXPlusOneDyingOnce"/> kills its process, the first time only.</summary>
    public const float Marker = -12345f;

    /// <summary>The input value at which <see cref="TwoXPlusOneOrThrow"/> throws.</summary>
    public const float Poison = -777f;

    public static float TwoXPlusOne(float x) => (2 * x) + 1;

    public static double Root(int x) => Math.Sqrt(x);

    /// <summary>2x + 1; but the first worker to see <see cref="Marker"/> (of all workers: an ShmCounter decides) SIGKILLs itself there.</summary>
    public static float TwoXPlusOneDyingOnce(float x)
    {
        if (x == Marker)
        {
            using ShmCounter seen = ShmCounter.Open(Environment.GetEnvironmentVariable(KillCounterVariable)!);
            if (seen.Increment() == 1)
            {
                Process.GetCurrentProcess().Kill(); // SIGKILL, mid-chunk: the elements before this one are written already
            }
        }

        return (2 * x) + 1;
    }

    /// <summary>Counts itself in the kill counter and SIGKILLs its process, every time.</summary>
    public static float DieEveryTime(float x)
    {
        using (ShmCounter seen = ShmCounter.Open(Environment.GetEnvironmentVariable(KillCounterVariable)!))
        {
            seen.Increment();
        }

        Process.GetCurrentProcess().Kill();
        return x;
    }

    public static float TwoXPlusOneOrThrow(float x) =>
        x == Poison ? throw new InvalidOperationException("poisoned input") : (2 * x) + 1;

    /// <summary>Waits (at most a minute) until the gate event is set, then returns x.</summary>
    public static float WaitForGate(float x)
    {
        using ShmEvent gate = ShmEvent.Open(Environment.GetEnvironmentVariable(GateVariable)!);
        _ = gate.Wait(TimeSpan.FromMinutes(1));
        return x;
    }

    /// <summary>Writes each element's index in the whole array: checks the offset ForEachChunk passes.</summary>
    public static void WriteIndices(Span<long> chunk, int offset)
    {
        for (int i = 0; i < chunk.Length; i++)
        {
            chunk[i] = offset + i;
        }
    }

    /// <summary>Sorts the chunk (a kernel that is not element by element).</summary>
    public static void SortChunk(Span<int> chunk, int offset) => chunk.Sort();

    public static void ThrowInChunk(Span<int> chunk, int offset) =>
        throw new InvalidOperationException($"chunk at {offset} refused");

    /// <summary>Fills the array it was given with <paramref name="arg"/>.Value and returns its length (Apply, ShmProcess.Start).</summary>
    public static int Fill((ShmArray<int> Array, int Value) arg)
    {
        using ShmArray<int> array = arg.Array;
        array.AsSpan().Fill(arg.Value);
        return array.Length;
    }

    /// <summary>Squares slot <paramref name="index"/> of the array in place; returns the old value (Starmap).</summary>
    public static int SquareSlot(ShmArray<int> array, int index)
    {
        using (array)
        {
            int old = array[index];
            array[index] = old * old;
            return old;
        }
    }

    /// <summary>Writes its segment's size into its first 8 bytes and returns the sum of the others (Map over several segments).</summary>
    public static long StampSize(ShmSharedMemory memory)
    {
        using (memory)
        {
            Span<byte> bytes = memory.Span;
            long sum = 0;
            foreach (byte b in bytes[8..])
            {
                sum += b;
            }

            BitConverter.TryWriteBytes(bytes, memory.Size);
            return sum;
        }
    }

    /// <summary>Adds to a shared value under its lock; returns the new value (Apply, ShmProcess.Start).</summary>
    public static long AddTo((ShmValue<long> Value, long Delta) arg)
    {
        using ShmValue<long> value = arg.Value;
        using (value.Lock.Hold())
        {
            value.Value += arg.Delta;
            return value.Value;
        }
    }
}
