using System.Runtime.InteropServices;
using ShmIpc.Interop;

namespace ShmIpc.Signaling;

/// <summary>How this process orders "publish, then read the sleeper count" (LAYOUT.md §4): a full fence per publication, or
/// none, the sleepers paying for it with <c>membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)</c>.</summary>
internal enum FenceMode
{
    /// <summary>Every publication is followed by a full fence (the symmetric protocol; every peer may use it).</summary>
    Full,

    /// <summary>This process is registered for global expedited membarriers: on a segment marked for it, publishers skip the fence.</summary>
    Membarrier,
}

/// <summary>
/// The asymmetric fence of LAYOUT.md §4: on a segment whose creator marked it (queue Features bit 1, pipe Flags bit 2),
/// a registered publisher orders its publishing store before its read of the sleeper count with nothing but program order,
/// and every sleeper, after registering and before re-checking its condition, runs
/// <c>membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)</c>, which makes each running thread of every registered process execute
/// a full barrier (an IPI; a thread not running passed one when it was switched out).
/// </summary>
/// <remarks>
/// Design:
/// - Why no wakeup is lost (Dekker with an asymmetric barrier, as userspace RCU and the .NET GC's
///   FlushProcessWriteBuffers use it). Publisher P: store X (publish), load S (sleepers). Sleeper W: RMW S (register),
///   membarrier, load X (re-check). membarrier(2) guarantees that when it returns, every thread of a registered process
///   has passed a full barrier that is ordered after W's accesses before the call and before W's accesses after it.
///   If P's barrier point lies after its store X, X is visible before W's re-check: W sees the message. If it lies before
///   the store X, it also lies before P's load S, which then sees W's registration: P posts. The guarantee holds only for
///   processes registered (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) before the call; this process registers once, in
///   the static constructor, before any publication can skip the fence.
/// - Who may use which form, per segment: a publisher skips the fence only when the segment is marked AND its own process
///   registered (<see cref="Mode"/> is <see cref="FenceMode.Membarrier"/>); everybody else (C and Python peers, a process
///   with SHMIPC_FENCE=full or without membarrier) keeps the full fence, always correct. Every waiter on a marked segment
///   issues the membarrier (needs only MEMBARRIER_CMD_QUERY to list GLOBAL_EXPEDITED, not a registration); a process that
///   cannot is refused at open (<see cref="CanWaitOnMarkedSegments"/>). A build that does not know the mark refuses the
///   segment (unknown feature / flag bit), so no waiter without the membarrier ever shares a segment with a publisher
///   without the fence. Unmarked segments (created under SHMIPC_FENCE=full, or where membarrier is missing) run today's
///   symmetric protocol for everyone.
/// - MEMBARRIER_CMD_PRIVATE_EXPEDITED would not do: it reaches the threads of the caller's own process only.
/// - The JIT: the publishing store is a Volatile.Write (or an Interlocked RMW) and the count is read with Volatile.Read;
///   RyuJIT marks both as ordered side effects and never swaps them (checked in the disassembly of ShmConnection.Send and
///   ShmQueue.Enqueue), so program order is the instruction order the membarrier argument needs.
/// - Cost: one membarrier per sleep registration (~1 µs with no registered thread running elsewhere, a few µs with IPIs),
///   paid by a waiter that is about to sleep on a futex anyway.
/// </remarks>
internal static class SleeperFence
{
    /// <summary>The environment variable that forces <see cref="FenceMode.Full"/> ("full") for this process.</summary>
    public const string EnvironmentVariable = "SHMIPC_FENCE";

    private static readonly long s_syscall = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => Libc.SysMembarrierX64,
        Architecture.Arm64 => Libc.SysMembarrierArm64,
        _ => -1,
    };

    /// <summary>Whether this process can issue MEMBARRIER_CMD_GLOBAL_EXPEDITED (the waiter's half).</summary>
    public static bool CanWaitOnMarkedSegments { get; } = QueryGlobalExpedited();

    /// <summary>How this process publishes on marked segments, and whether segments it creates are marked.</summary>
    public static FenceMode Mode { get; } = ChooseMode();

    /// <summary>"membarrier" or "full", for logs and the bench.</summary>
    public static string ModeName => Mode == FenceMode.Membarrier ? "membarrier" : "full";

    /// <summary>Whether a segment created now by this process gets the mark (tests may turn it off for one segment).</summary>
    public static bool MarkNewSegments => Mode == FenceMode.Membarrier && !t_createUnmarked;

    [ThreadStatic]
    private static bool t_createUnmarked;

    /// <summary>Tests: segments this thread creates until the returned scope ends are unmarked (the symmetric protocol).</summary>
    internal static IDisposable CreateUnmarkedForTests()
    {
        t_createUnmarked = true;
        return new UnmarkedScope();
    }

    /// <summary>The sleeper's half: after registering, before re-checking the condition. Throws if the kernel refuses.</summary>
    public static void BarrierForSleeper()
    {
        if (Libc.SyscallMembarrier(s_syscall, Libc.MembarrierCmdGlobalExpedited, 0, 0) != 0)
        {
            ThrowBarrierFailed(Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Why an open of a marked segment is refused here, or null when this process can wait on it.</summary>
    public static string? ProblemWithMark(bool marked) =>
        marked && !CanWaitOnMarkedSegments
            ? "it is marked for the asymmetric sleeper fence (LAYOUT.md §4) and this process cannot issue membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)"
            : null;

    private static void ThrowBarrierFailed(int errno) =>
        throw new IOException($"membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) failed with errno {errno}: a sleeper on a segment marked for the asymmetric fence cannot order its registration.");

    private static bool QueryGlobalExpedited()
    {
        if (s_syscall < 0 || !OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            long supported = Libc.SyscallMembarrier(s_syscall, Libc.MembarrierCmdQuery, 0, 0);
            return supported > 0 && (supported & Libc.MembarrierCmdGlobalExpedited) != 0 && (supported & Libc.MembarrierCmdRegisterGlobalExpedited) != 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    private static FenceMode ChooseMode()
    {
        if (string.Equals(Environment.GetEnvironmentVariable(EnvironmentVariable), "full", StringComparison.OrdinalIgnoreCase) || !CanWaitOnMarkedSegments)
        {
            return FenceMode.Full;
        }

        // Registration covers every thread of this process, present and future; the kernel makes it visible to every
        // later GLOBAL_EXPEDITED call before this returns.
        return Libc.SyscallMembarrier(s_syscall, Libc.MembarrierCmdRegisterGlobalExpedited, 0, 0) == 0 ? FenceMode.Membarrier : FenceMode.Full;
    }

    private sealed class UnmarkedScope : IDisposable
    {
        public void Dispose() => t_createUnmarked = false;
    }
}
