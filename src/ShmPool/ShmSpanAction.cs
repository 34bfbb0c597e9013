namespace ShmIpc;

/// <summary>
/// Works on one chunk of a shared array in place, for <see cref="ShmPool.ForEachChunk{T}(ShmArray{T}, ShmSpanAction{T}, int)"/>:
/// a static method (or capture-free lambda) run in a worker process.
/// </summary>
/// <typeparam name="T">The array's element type.</typeparam>
/// <param name="chunk">The chunk's elements, straight in the shared array's memory; valid only during the call.</param>
/// <param name="offset">The index in the whole array of <paramref name="chunk"/>[0].</param>
public delegate void ShmSpanAction<T>(Span<T> chunk, int offset);
