using ShmIpc.Layout;
using static ShmIpc.Layout.QueueDescriptor;

namespace ShmIpc.Ring;

// Loans: the producer's claim held open for the caller to write the payload in place (ShmLoan), then committed
// with its real length or abandoned. The same steps as TryWrite, split where TryWrite copies.
internal sealed unsafe partial class MpmcRing
{
    /// <summary>
    /// Claims a record of <paramref name="maxLength"/> payload bytes and leaves it in state "writing" (consumers wait
    /// for it, and skip it once this process is proved dead), as <see cref="TryWrite"/> does before its copy.
    /// <see cref="WriteStatus.Written"/> here means "claimed": the payload is at <see cref="LoanPayload"/>.
    /// </summary>
    public WriteStatus TryBeginLoan(int maxLength, out long position)
    {
        position = -1;
        if (ShutdownState != ShutdownNone)
        {
            return WriteStatus.ShutDown;
        }

        long claimed = TryClaim(maxLength);
        if (claimed < 0)
        {
            return WriteStatus.Full;
        }

        // After the claim and Tail CASes (full fences): see "Shutdown" in MpmcRing's remarks.
        if (ShutdownState != ShutdownNone)
        {
            EndLoan(claimed, StateAbandoned);
            return WriteStatus.ShutDownAbandoned;
        }

        position = claimed;
        return WriteStatus.Written;
    }

    /// <summary>The first payload byte of the record claimed at <paramref name="position"/>.</summary>
    public byte* LoanPayload(long position) => _data + (position & _offsetMask) + RecordHeaderSize;

    /// <summary>
    /// True while the record claimed at <paramref name="position"/> is still being written by us (neither committed
    /// nor abandoned, nor reused for a later lap: the State word's position tag tells).
    /// </summary>
    public bool IsLoanOpen(long position) =>
        (ulong)MappedAtomics.ReadInt64Acquire(_data + (position & _offsetMask) + StateOffset) == StateWord(position, StateWriting);

    /// <summary>
    /// Publishes the first <paramref name="length"/> bytes of the record claimed at <paramref name="position"/> for
    /// <paramref name="maxLength"/> bytes. The caller checked that the loan is open and <c>length &lt;= maxLength</c>.
    /// </summary>
    /// <remarks>
    /// Design: the record's size was fixed by its claim (Tail is already past it), and consumers, helpers and the
    /// reclaimer all step over a record by the size its Claim word decodes to. A shorter message therefore splits
    /// the record in two, both in the format every peer already reads (LAYOUT.md §6, "Shortened records"):
    /// 1. when the shorter record is smaller, the bytes after it get the header of an abandoned message record
    ///    (its claim, a tag for its own position, the free Reader stamp, our identity), with plain stores;
    /// 2. the Claim word is rewritten with the shorter length, a release store: whoever loads that Claim (acquire)
    ///    also sees the header of step 1, so a walker (CountMessages) that steps by the new size lands on a valid one;
    /// 3. State = committed, a release store (pairs with the consumers' acquire of State, which they load before
    ///    Claim: a consumer that sees "committed" sees the rewritten Claim too).
    /// While State is "writing" nobody moves past the record on its Claim alone: consumers wait (Pending) or, once
    /// we are proved dead, abandon it, and then either size is right (killed before step 2: the old record whole,
    /// the abandoned header just payload bytes inside it; after: two records, both skipped).
    /// </remarks>
    public void CommitLoan(long position, int maxLength, int length)
    {
        byte* record = _data + (position & _offsetMask);
        if (length != maxLength)
        {
            long size = RecordSize(length);
            long rest = RecordSize(maxLength) - size;
            if (rest > 0)
            {
                long restPosition = position + size;
                byte* restRecord = record + size;
                MappedAtomics.WriteInt64Plain(restRecord + ClaimOffset, (long)ClaimWord(KindMessage, (int)(rest - RecordHeaderSize), _pid));
                MappedAtomics.WriteInt64Plain(restRecord + ReaderOffset, (long)FreeStamp(restPosition));
                MappedAtomics.WriteInt64Plain(restRecord + ProducerIdentityOffset, (long)_identity);
                MappedAtomics.WriteInt64Plain(restRecord + StateOffset, (long)StateWord(restPosition, StateAbandoned));
            }

            // Release: step 2 of the remarks.
            MappedAtomics.WriteInt64Release(record + ClaimOffset, (long)ClaimWord(KindMessage, length, _pid));
        }

        CountPut();
        EndLoan(position, StateCommitted);
    }

    /// <summary>Ends the loan at <paramref name="position"/> in <paramref name="state"/> (committed or abandoned).</summary>
    public void EndLoan(long position, uint state) =>
        // Publish: pairs with the acquire load of State in TryBeginRead.
        MappedAtomics.WriteInt64Release(_data + (position & _offsetMask) + StateOffset, (long)StateWord(position, state));
}
