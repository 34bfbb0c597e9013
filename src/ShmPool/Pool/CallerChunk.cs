using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>
/// A chunk whose caller takes its result from the worker's pipe itself (a synchronous Apply, see
/// <c>ShmPool.ReceiveFor</c>): the result is read into the chunk first, and the chunk completed only after
/// it left its worker's list. In between nothing else can complete it: a chunk in the in-flight list of a
/// worker whose pipe a caller holds is completed only by that pipe's receiver, or by the reader thread once
/// the caller has let go (a dead worker's chunks).
/// </summary>
internal abstract class CallerChunk : PoolChunk
{
    protected CallerChunk()
        : base(0, null!, default, 1)
    {
    }

    /// <summary>Reads the results that follow the chunk id, without completing the chunk (see <see cref="Finish"/>).</summary>
    public abstract void ReadResults(ref MessageReader reader, IShmObjectSerializer serializer, bool raw);

    /// <summary>Completes the chunk with what <see cref="ReadResults"/> read (unless it failed meanwhile).</summary>
    public abstract void Finish();
}
