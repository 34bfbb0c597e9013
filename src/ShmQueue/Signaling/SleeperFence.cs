using System.Runtime.InteropServices;
using ShmIpc.Interop;

namespace ShmIpc.Signaling;

/// <summary>
/// The asymmetric fence of LAYOUT.md §4: on a segment whose creator marked it (queue Features bit 2, pipe Flags bit 2),
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
///   <see cref="Registration"/>, when it first maps a marked segment, before any publication on it can skip the fence.
/// - Who may use which form, per segment: a publisher skips the fence only when the segment is marked AND its own process
///   registered (<see cref="MayPublishWithoutFence"/>); everybody else (C and Python peers, a process
///   with SHMIPC_FENCE=full or without membarrier) keeps the full fence, always correct. Every waiter on a marked segment
///   issues the membarrier (needs only MEMBARRIER_CMD_QUERY to list GLOBAL_EXPEDITED, not a registration); a process that
///   cannot is refused at open (<see cref="CanWaitOnMarkedSegments"/>). A build that does not know the mark refuses the
///   segment (unknown feature / flag bit), so no waiter without the membarrier ever shares a segment with a publisher
///   without the fence. Unmarked segments (the default, <see cref="MarkByDefault"/>; SHMIPC_FENCE=full; no membarrier) run today's
///   symmetric protocol for everyone.
/// - MEMBARRIER_CMD_PRIVATE_EXPEDITED would not do: it reaches the threads of the caller's own process only.
/// - The JIT: the publishing store is a Volatile.Write (or an Interlocked RMW) and the count is read with Volatile.Read;
///   RyuJIT marks both as ordered side effects and never swaps them (checked in the disassembly of ShmConnection.SendCore:
///   the Tail store, then the load of the count), so program order is the instruction order the membarrier argument needs.
/// - Cost: one membarrier per sleep registration (~1 µs with no registered thread running elsewhere, a few µs with IPIs),
///   paid by a waiter that is about to sleep on a futex anyway.
/// </remarks>
internal static class SleeperFence
{
    /// <summary>
    /// The environment variable that chooses for this process: "full" (never skip the fence, create unmarked segments),
    /// "membarrier" (create marked segments). Unset: <see cref="MarkByDefault"/>.
    /// </summary>
    public const string EnvironmentVariable = "SHMIPC_FENCE";

    /// <summary>
    /// Whether segments are marked when SHMIPC_FENCE is unset. Off: measured on 2026-12-07 (bench "fence",
    /// bench/results/2026-12-07_fence.md), skipping this fence does not make a Queue or Pipe message faster yet, because
    /// each message still runs other locked instructions (the queue's claim CAS and use count, the pipe's send guard), any
    /// one of which drains the store buffer as the fence did; and marked segments are refused by older builds and peers.
    /// </summary>
    public const bool MarkByDefault = false;

    private static readonly string? s_setting = Environment.GetEnvironmentVariable(EnvironmentVariable)?.Trim().ToLowerInvariant();

    private static readonly long s_syscall = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => Libc.SysMembarrierX64,
        Architecture.Arm64 => Libc.SysMembarrierArm64,
        _ => -1,
    };

    [ThreadStatic]
    private static int t_markOverride; // 0 none, 1 marked, 2 unmarked (test and bench scopes)

    /// <summary>Whether this process can issue MEMBARRIER_CMD_GLOBAL_EXPEDITED (the waiter's half).</summary>
    public static bool CanWaitOnMarkedSegments { get; } = QueryGlobalExpedited();

    /// <summary>Whether SHMIPC_FENCE=full forbids this process to skip the fence anywhere.</summary>
    public static bool FullFenceForced => s_setting == "full";

    /// <summary>Whether a segment created now by this thread gets the mark.</summary>
    public static bool MarkNewSegments => CanWaitOnMarkedSegments && t_markOverride switch
    {
        1 => true,
        2 => false,
        _ => s_setting == "membarrier" || (s_setting is null or "" && MarkByDefault),
    };

    /// <summary>
    /// Whether this process may skip the fence on a marked segment: not forced to "full", and registered for global
    /// expedited membarriers (done here, once, at the first marked segment this process maps: before any publication on it).
    /// </summary>
    public static bool MayPublishWithoutFence => !FullFenceForced && Registration.Registered;

    /// <summary>"membarrier" or "full": how this process publishes on a marked segment, for logs and the bench.</summary>
    public static string ModeName => !FullFenceForced && CanWaitOnMarkedSegments ? "membarrier" : "full";

    /// <summary>Tests and the bench: segments this thread creates until the scope ends are marked (when membarrier is available).</summary>
    internal static IDisposable CreateMarkedForTests() => new MarkScope(1);

    /// <summary>Tests and the bench: segments this thread creates until the scope ends are unmarked (the symmetric protocol).</summary>
    internal static IDisposable CreateUnmarkedForTests() => new MarkScope(2);

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

    /// <summary>The registration, run once by the type initializer at first use (thread-safe by the runtime).</summary>
    private static class Registration
    {
        // Covers every thread of this process, present and future; the kernel makes it visible to every later
        // GLOBAL_EXPEDITED call before the call returns.
        public static readonly bool Registered = CanWaitOnMarkedSegments &&
            Libc.SyscallMembarrier(s_syscall, Libc.MembarrierCmdRegisterGlobalExpedited, 0, 0) == 0;
    }

    private sealed class MarkScope : IDisposable
    {
        private readonly int _previous;

        public MarkScope(int mark)
        {
            _previous = t_markOverride;
            t_markOverride = mark;
        }

        public void Dispose() => t_markOverride = _previous;
    }
}
