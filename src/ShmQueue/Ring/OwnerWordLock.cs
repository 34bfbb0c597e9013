using System.Runtime.CompilerServices;
using ShmIpc.Layout;

namespace ShmIpc.Ring;

/// <summary>
/// A lock in one shared 64-bit word that a killed holder cannot wedge: 0 when free, else the identity word
/// (<see cref="Memory.ProcessIdentity.ToWord"/>: pid + start time) of the process holding it. The queue's
/// ReclaimLock and a shared pipe end's SendLock / ReceiveLock are such words.
/// </summary>
/// <remarks>
/// Design:
/// - Take: CAS 0 -> my identity word. Let go: CAS my identity word -> 0 (never a plain store: if the lock was
///   taken over because this process was wrongly judged dead, letting go must not free the new holder's lock).
/// - Take over: a holder proved dead (the caller checks pid + start time, never a timeout) is replaced by CAS
///   from exactly the word it saw; two processes that both found it dead cannot both win.
/// - Ordering: every CAS is a full fence, so what the previous holder stored before it let go (or before it
///   died) is visible to the next holder after its CAS; the protected data must still be re-validated after a
///   takeover, since a holder killed half-way may have left it half-updated (each user says why that is safe).
/// - No OS calls here (the liveness lookup is the caller's), so this stays in Ring/.
/// </remarks>
internal static unsafe class OwnerWordLock
{
    /// <summary>Takes the free lock; false when someone holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryEnter(byte* word, ulong identity) => MappedAtomics.CompareExchangeInt64(word, (long)identity, 0) == 0;

    /// <summary>Lets go of the lock if this identity still holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Exit(byte* word, ulong identity) => MappedAtomics.CompareExchangeInt64(word, 0, (long)identity);

    /// <summary>The identity word holding the lock, or 0.</summary>
    public static ulong Holder(byte* word) => (ulong)MappedAtomics.ReadInt64Acquire(word);

    /// <summary>Frees the lock of a holder proved dead; false when the word is no longer <paramref name="deadHolder"/>.</summary>
    public static bool TryBreak(byte* word, ulong deadHolder) =>
        (ulong)MappedAtomics.CompareExchangeInt64(word, 0, (long)deadHolder) == deadHolder;

    /// <summary>Takes the lock straight from a holder proved dead; false when the word is no longer <paramref name="deadHolder"/>.</summary>
    public static bool TryTakeOver(byte* word, ulong deadHolder, ulong identity) =>
        (ulong)MappedAtomics.CompareExchangeInt64(word, (long)identity, (long)deadHolder) == deadHolder;
}
