namespace ShmIpc.TestHost;

/// <summary>Functions the pool's mapping tests run in worker processes (ShmPool.Tests' WorkerMappingTests).</summary>
public static class MappingTargets
{
    /// <summary>
    /// Reads one slot of <paramref name="array"/>, leaving it open (closing what the deserializer opened is the worker's
    /// job), and reports this worker's pid and how many mappings it has now (the lines of /proc/self/maps).
    /// </summary>
    public static (int Pid, int Mappings) ReadSlotAndCountMappings(ShmArray<int> array, int index)
    {
        _ = array[index % array.Length];
        return (Environment.ProcessId, File.ReadLines("/proc/self/maps").Count());
    }
}
