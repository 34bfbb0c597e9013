using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

/// <summary>
/// The joinable queue's shared count (QueueDescriptor.Joinable.cs) and the Deliveries word of a dead letter.
/// </summary>
/// <remarks>
/// Design: Unfinished = messages put minus TaskDone calls, in one control-block word.
/// - Put: +1 (atomic add, a full fence) after the claim and the payload, before the release store of State = committed.
///   A consumer that sees the record committed (acquire) therefore sees the +1, so a TaskDone for a message it took can
///   never find the count at 0: "more TaskDone calls than puts" is the only way to hit 0, and it is refused.
///   A put abandoned at shutdown, or refused when full, never adds.
/// - TaskDone: CAS -1, never below 0 (a CAS loop rather than an add, so an extra TaskDone changes nothing and throws).
/// - Join: waits for 0; the TaskDone that reaches 0 notifies the space signal, on which Join's sleepers (sync and the
///   async waiter threads) register as LAYOUT.md §4 says, so no wake-up is lost.
/// Crash at each step: a producer killed between its +1 and its State store leaves the record "writing" (skipped as
///   abandoned once it is proved dead) and the count one too high: Join then waits until its timeout or cancellation. A
///   consumer killed before its TaskDone leaves the count one too high for good, as in Python. Both are the documented
///   limits of a joinable queue; an acknowledged queue (whose count is read off the ring) has neither.
/// Dead letters: <see cref="WriteDeliveries"/> overwrites the ProducerIdentity word just before publishing. A consumer
///   that finds the record still "writing" in that instant reads a word that is not an identity and falls back to the
///   producer's pid from the Claim word (ShmQueue.IsAlive), so a live producer is not taken for dead.
/// </remarks>
internal sealed unsafe partial class MpmcRing
{
    private readonly bool _joinable;

    /// <summary>True when the creator made this queue joinable (fixed for its life).</summary>
    public bool IsJoinable => _joinable;

    /// <summary>The joinable count: messages put and not yet marked done (acquire). 0 on other queues.</summary>
    public long Unfinished => MappedAtomics.ReadInt64Acquire(_control + UnfinishedOffset);

    /// <summary>
    /// Marks one message done: -1 on the joinable count. False (and nothing changed) when it is already 0;
    /// <paramref name="left"/> is the count after the call.
    /// </summary>
    public bool TryTaskDone(out long left)
    {
        byte* word = _control + UnfinishedOffset;
        while (true)
        {
            long seen = MappedAtomics.ReadInt64Acquire(word);
            if (seen <= 0)
            {
                left = seen;
                return false;
            }

            if (MappedAtomics.CompareExchangeInt64(word, seen - 1, seen) == seen)
            {
                left = seen - 1;
                return true;
            }
        }
    }

    /// <summary>A put of a joinable queue: +1 before the caller publishes the record (see the remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountPut()
    {
        if (_joinable)
        {
            MappedAtomics.AddInt64(_control + UnfinishedOffset, 1);
        }
    }

    /// <summary>
    /// The DeliveryCount of a first take: 1, or the count a dead letter was written with (its Deliveries word, tagged for
    /// this position; the producer's identity otherwise). Read after the take's CAS on Reader, which follows the
    /// acquire of State = committed that published the word.
    /// </summary>
    public int FirstDeliveryCount(in ReadLease lease) =>
        Math.Max(1, DeliveriesOf((ulong)MappedAtomics.ReadInt64Acquire(lease.Record + ProducerIdentityOffset), lease.Position));

    /// <summary>Writes the Deliveries word of a record being written (plain: the caller's release store of State publishes it).</summary>
    private static void WriteDeliveries(byte* record, long position, int deliveries) =>
        MappedAtomics.WriteInt64Plain(record + ProducerIdentityOffset, (long)DeliveriesWord(position, deliveries));
}
