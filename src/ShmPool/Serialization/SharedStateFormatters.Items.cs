namespace ShmIpc;

/// <summary>The shared memory, arrays and values a worker opens for one task item, closed when the item is done.</summary>
/// <remarks>
/// Design: a <see cref="ShmSharedMemory"/>, <see cref="ShmArray{T}"/> or <see cref="ShmValue{T}"/> in a task's argument
/// travels as its name and is opened again by the worker's deserializer, a new mapping per item. Kept open, a Map of many
/// items that each pass the same array would add a mapping per item until the worker hits vm.max_map_count (65,530).
/// So a worker brackets each item with <see cref="BeginItem"/> / <see cref="EndItem"/>, and what the formatters opened in
/// between is closed after the item's result was serialized (a result that names such an object has its name by then).
/// Not a cache by name: only the name crosses the pipe, and the caller may dispose an array and create another of the
/// same name between two items, which a cached mapping would not see. Opening costs one mmap per item; the per-item
/// scope bounds the mappings at the number of objects one argument holds. Deserializing outside an item (a process's
/// start argument, a result in the caller) keeps what it opens, as before. One thread runs one item at a time, so the
/// list is thread-static.
/// </remarks>
internal static partial class SharedStateFormatters
{
    [ThreadStatic]
    private static List<IDisposable>? t_itemObjects;

    /// <summary>From now until <see cref="EndItem"/>, this thread's deserializations belong to one task item.</summary>
    public static void BeginItem() => t_itemObjects = [];

    /// <summary>Closes what the formatters opened since <see cref="BeginItem"/> (the user's function may have closed some already: harmless).</summary>
    public static void EndItem()
    {
        List<IDisposable>? opened = t_itemObjects;
        t_itemObjects = null;
        if (opened is null)
        {
            return;
        }

        foreach (IDisposable item in opened)
        {
            item.Dispose();
        }
    }

    /// <summary>Registers <paramref name="opened"/> to be closed at the end of the current item, if one is running.</summary>
    private static T ClosedAfterItem<T>(T opened)
        where T : IDisposable
    {
        t_itemObjects?.Add(opened);
        return opened;
    }
}
