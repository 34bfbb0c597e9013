using ShmIpc.Layout;

namespace ShmIpc;

/// <summary>How a pipe is made (<see cref="ShmPipe.Create"/>) or joined (<see cref="ShmPipe.Connect"/>).</summary>
public sealed class ShmPipeOptions : ShmObjectOptions
{
    /// <summary>The default <see cref="Capacity"/>: 256 KiB per direction.</summary>
    public const int DefaultCapacity = 256 * 1024;

    /// <summary>
    /// Bytes of ring per direction: a power of two from 1 KiB to 1 GiB. Only <see cref="ShmPipe.Create"/>
    /// uses it; a connecting end takes the creator's.
    /// </summary>
    public int Capacity { get; set; } = DefaultCapacity;

    /// <summary>Default settings; <see cref="ShmObjectOptions.OpenTimeout"/> is 2 s for a pipe.</summary>
    public ShmPipeOptions() => OpenTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The longest message, at most <c>Capacity / 2 - 8</c>. Null means <c>Capacity / 4</c>.
    /// Only <see cref="ShmPipe.Create"/> uses it; a connecting end takes the creator's.
    /// </summary>
    public int? MaxMessageLength { get; set; }

    /// <summary>
    /// The longest message this end sends or accepts, in bytes. A message longer than <see cref="MaxMessageLength"/> goes
    /// through a side segment of its own (one copy in, read in place); this caps how much shared memory one message may
    /// take. Default: <see cref="Array.MaxLength"/>. Not stored in the pipe: each end sets its own.
    /// </summary>
    public int MaxLargeMessageLength { get; set; } = Array.MaxLength;

    /// <summary>
    /// True (default): both ends send and receive. False: one direction only, as Python's
    /// <c>Pipe(duplex=False)</c>: the creator's end only receives and the connector's end only sends.
    /// Only <see cref="ShmPipe.Create"/> uses it.
    /// </summary>
    public bool Duplex { get; set; } = true;

    internal int EffectiveMaxMessageLength => MaxMessageLength ?? Capacity / 4;

    internal void Validate()
    {
        if (!SpscRingDescriptor.IsValidCapacity(Capacity))
        {
            throw new ArgumentOutOfRangeException(nameof(Capacity), Capacity,
                $"The capacity must be a power of two from {SpscRingDescriptor.MinCapacity} to {SpscRingDescriptor.MaxCapacity} bytes.");
        }

        int limit = SpscRingDescriptor.MaxMessageLengthFor(Capacity);
        if (MaxMessageLength is int max && (max < 0 || max > limit))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessageLength), max,
                $"The maximum message length must be from 0 to {limit} bytes (half the capacity, less the record header).");
        }

        ValidateCommon();
        ValidateLarge();
    }

    internal void ValidateLarge()
    {
        if (MaxLargeMessageLength < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxLargeMessageLength), MaxLargeMessageLength, "The largest message length must not be negative.");
        }
    }
}
