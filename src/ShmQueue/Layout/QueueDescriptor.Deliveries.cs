using System.Runtime.CompilerServices;

namespace ShmIpc.Layout;

/// <summary>
/// The words of an acknowledged queue (native-notes/LAYOUT.md §6.5). Only the meaning of existing words grows: a record
/// is the same 32-byte header and payload as in a plain queue, so producers write exactly what they always wrote.
/// <code>
///  control  size  field          writer                                       readers
///  20       4     Features       creator, once (bit 0: acknowledged,          every opener; unknown bits are refused
///                                bit 1: asymmetric sleeper fence, LAYOUT §4)
///  24       4     MaxDeliveries  creator, once (0: unlimited)                 consumers (dead-lettering)
///  264      8     Redeliveries   atomic add by a releaser, after its release  consumers: "something was released since I looked"
///
///  record   size  field          acknowledged meaning
///  16       8     Reader         free stamp ~p: never taken, deliverable;
///                                identity word: taken by that process, not yet settled (its space stays held);
///                                Released(n) (tag 00100, n &lt;&lt; 5): let go after n deliveries, deliverable again.
///                                CAS only: a taker from the stamp or Released(n) to its identity; a releaser from the
///                                taker's identity (itself, or a taker proved dead) to Released(n).
///  24       8     ProducerIdentity / Deliveries: the producer's identity until commit (a plain queue stops here); a
///                                retaker raises it by CAS to Deliveries(p, n + 1) (tag 00101, the position tag in the
///                                high 32 bits) before its CAS on Reader. Anything else (the producer's identity) means 1.
/// </code>
/// State stays "committed" while a record is taken or released; Ack release-stores "consumed" exactly as a plain read
/// ends. Redeliveries lives on ReadPosition's line: consumers load that line on every take already.
/// </summary>
internal static unsafe partial class QueueDescriptor
{
    public const int FeaturesOffset = 20;
    public const int MaxDeliveriesOffset = 24;
    public const int RedeliveriesOffset = 264;

    /// <summary>Feature bit 0: takes are acknowledged (ShmQueueOptions.Acknowledged).</summary>
    public const int FeatureAcknowledged = 1;

    /// <summary>
    /// Feature bit 2: the asymmetric sleeper fence (LAYOUT.md §4, Signaling/SleeperFence.cs): every waiter issues
    /// membarrier(GLOBAL_EXPEDITED) after registering, so registered publishers may skip their fence.
    /// </summary>
    public const int FeatureAsymmetricFence = 4;

    /// <summary>Every feature bit this build understands; an opener refuses a queue with any other.</summary>
    public const int KnownFeatures = FeatureAcknowledged | FeatureJoinable | FeatureAsymmetricFence;

    /// <summary>The largest delivery count the words can carry (27 bits).</summary>
    public const int MaxDeliveryCount = (1 << 27) - 1;

    /// <summary>The Reader word of a record let go after <paramref name="deliveries"/> deliveries.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReleasedWord(int deliveries) => ((ulong)(uint)Math.Min(deliveries, MaxDeliveryCount) << WordTagDescriptor.TagBits) | WordTagDescriptor.ReleasedTag;

    /// <summary>True when a Reader word says "released"; <paramref name="deliveries"/> is how many deliveries it had.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsReleased(ulong reader, out int deliveries)
    {
        deliveries = (int)((uint)reader >> WordTagDescriptor.TagBits);
        return (reader & WordTagDescriptor.TagMask) == WordTagDescriptor.ReleasedTag && reader >> 32 == 0;
    }

    /// <summary>The Deliveries word: delivery <paramref name="deliveries"/> of the record at <paramref name="position"/> has begun.</summary>
    public static ulong DeliveriesWord(long position, int deliveries) =>
        (PositionTag(position) << 32) | ((ulong)(uint)Math.Min(deliveries, MaxDeliveryCount) << WordTagDescriptor.TagBits) | WordTagDescriptor.DeliveriesTag;

    /// <summary>
    /// The deliveries begun for the record at <paramref name="position"/> according to its word at offset 24: the count of a
    /// Deliveries word tagged for this position, else 1 (a record is taken at least once before anyone reads this).
    /// -1 when the word is a Deliveries word of another position (the caller's view of the record is stale).
    /// </summary>
    public static int DeliveriesOf(ulong word, long position)
    {
        if ((word & WordTagDescriptor.TagMask) != WordTagDescriptor.DeliveriesTag)
        {
            return 1;
        }

        return word >> 32 == PositionTag(position) ? Math.Max(1, (int)((uint)word >> WordTagDescriptor.TagBits)) : -1;
    }

    /// <summary>Writes the acknowledged-queue words of a fresh control block (creator only, before publishing).</summary>
    public static void InitializeFeatures(byte* control, bool acknowledged, bool joinable, int maxDeliveries, bool asymmetricFence = false)
    {
        *(int*)(control + FeaturesOffset) = (acknowledged ? FeatureAcknowledged : 0) | (joinable ? FeatureJoinable : 0) | (asymmetricFence ? FeatureAsymmetricFence : 0);
        *(int*)(control + MaxDeliveriesOffset) = maxDeliveries;
    }

    /// <summary>Checks the feature words of a control block read from a peer; null when usable.</summary>
    public static string? ValidateFeatures(byte* control)
    {
        int features = *(int*)(control + FeaturesOffset);
        if ((features & ~KnownFeatures) != 0)
        {
            return $"feature bits 0x{features:X}, this build knows 0x{KnownFeatures:X} (the queue was made by a newer ShmIpc)";
        }

        if ((features & (FeatureAcknowledged | FeatureJoinable)) == (FeatureAcknowledged | FeatureJoinable))
        {
            return $"feature bits 0x{features:X}: both acknowledged and joinable (an acknowledged queue counts its unfinished messages off the ring)";
        }

        int maxDeliveries = *(int*)(control + MaxDeliveriesOffset);
        if (maxDeliveries < 0 || (maxDeliveries != 0 && (features & FeatureAcknowledged) == 0))
        {
            return $"maximum deliveries {maxDeliveries} on a queue that is {((features & FeatureAcknowledged) == 0 ? "not acknowledged" : "acknowledged")}";
        }

        return null;
    }

    /// <summary>Whether the queue is marked for the asymmetric sleeper fence (Features bit 2).</summary>
    public static bool HasAsymmetricFence(byte* control) => (*(int*)(control + FeaturesOffset) & FeatureAsymmetricFence) != 0;
}
