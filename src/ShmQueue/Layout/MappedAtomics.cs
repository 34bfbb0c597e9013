using System.Runtime.CompilerServices;

namespace ShmIpc.Layout;

/// <summary>
/// The only way ShmIpc reads or writes a shared word: the memory ordering is in the name.
/// Acquire loads pair with release stores of the same word (everything written before the release
/// is visible after the acquire that reads its value); CompareExchange and Exchange are full fences.
/// All addresses are 8-byte (Int64) or 4-byte (Int32) aligned by the layout descriptors.
/// </summary>
internal static unsafe class MappedAtomics
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ReadInt64Acquire(byte* address) => Volatile.Read(ref *(long*)address);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteInt64Release(byte* address, long value) => Volatile.Write(ref *(long*)address, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long CompareExchangeInt64(byte* address, long value, long comparand) =>
        Interlocked.CompareExchange(ref *(long*)address, value, comparand);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ReadInt32Acquire(byte* address) => Volatile.Read(ref *(int*)address);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteInt32Release(byte* address, int value) => Volatile.Write(ref *(int*)address, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CompareExchangeInt32(byte* address, int value, int comparand) =>
        Interlocked.CompareExchange(ref *(int*)address, value, comparand);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ExchangeInt64(byte* address, long value) => Interlocked.Exchange(ref *(long*)address, value);

    /// <summary>Atomic add (a full fence); returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long AddInt64(byte* address, long value) => Interlocked.Add(ref *(long*)address, value);

    /// <summary>A plain 32-bit store: only for words that this process alone reads (a lock's owner thread).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteInt32Plain(byte* address, int value) => *(int*)address = value;

    /// <summary>A plain 32-bit load: only for words this process owns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ReadInt32Plain(byte* address) => *(int*)address;

    /// <summary>A plain store: only for words no other process reads until a later release publishes them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteInt64Plain(byte* address, long value) => *(long*)address = value;

    /// <summary>A plain load: only for words this process owns or that an earlier acquire made stable.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ReadInt64Plain(byte* address) => *(long*)address;
}
