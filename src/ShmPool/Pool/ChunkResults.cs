using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>Reads the results of a chunk into its outcome (for <see cref="PoolChunk{TResult}"/> and <see cref="SyncChunk{TResult}"/>).</summary>
internal static class ChunkResults
{
    public static void Read<TResult>(ref MessageReader reader, PoolFunction function, IShmObjectSerializer serializer, bool raw, ChunkOutcome<TResult> outcome)
    {
        if (raw)
        {
            ReadBlock(ref reader, outcome);
        }
        else
        {
            ReadItems(ref reader, function, serializer, outcome);
        }
    }

    /// <summary>RawResults: the results block, then the failed items (see <see cref="MessageKind.RawChunk"/>).</summary>
    private static void ReadBlock<TResult>(ref MessageReader reader, ChunkOutcome<TResult> outcome)
    {
        int size = reader.ReadInt32();
        ReadOnlyMemory<byte> block = reader.ReadBytes();
        int errors = reader.ReadInt32();
        if (errors < 0 || errors > outcome.Count)
        {
            throw new InvalidDataException($"A results block of {outcome.Count} items reports {errors} failures.");
        }

        if (errors < outcome.Count || block.Length != 0)
        {
            if (!RawValues.IsRaw<TResult>() || size != System.Runtime.CompilerServices.Unsafe.SizeOf<TResult>())
            {
                throw new InvalidDataException($"A results block of {size}-byte values cannot hold {typeof(TResult).Name} results.");
            }

            RawValues.CopyBlock(block.Span, outcome.Values);
        }

        for (int i = 0; i < errors; i++)
        {
            int index = reader.ReadInt32();
            if ((uint)index >= (uint)outcome.Count)
            {
                throw new InvalidDataException($"A failure is reported for item {index} of {outcome.Count}.");
            }

            outcome.SetError(index, reader.ReadError().ToException());
        }
    }

    private static void ReadItems<TResult>(ref MessageReader reader, PoolFunction function, IShmObjectSerializer serializer, ChunkOutcome<TResult> outcome)
    {
        int count = outcome.Count;
        bool raw = RawValues.Applies<TResult>(serializer) && function.ResultType == typeof(TResult);
        for (int i = 0; i < count; i++)
        {
            if (reader.ReadByte() == 0)
            {
                ReadOnlyMemory<byte> bytes = reader.ReadBytes();
                try
                {
                    outcome.Values[i] = raw ? RawValues.Read<TResult>(bytes.Span) : (TResult)serializer.Deserialize(function.ResultType, bytes)!;
                }
#pragma warning disable CA1031 // A result that cannot be read fails its item only.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    outcome.SetError(i, e);
                }
            }
            else
            {
                outcome.SetError(i, reader.ReadError().ToException());
            }
        }
    }
}
