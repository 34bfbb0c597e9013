using System.Runtime.InteropServices;
using ShmIpc.Interop;

namespace ShmIpc.Signaling;

/// <summary>
/// Linux + glibc: one <c>futex_waitv</c> sleeps on up to 127 named semaphores (and the kick) at once, because a glibc
/// semaphore is itself a futex word in the mapped semaphore file.
/// </summary>
/// <remarks>
/// Design: glibc (2.21+, 64-bit) lays a <c>sem_t</c> out as <c>struct new_sem { uint64 data; int private; int pad; }</c>:
/// the low 32 bits of <c>data</c> are the value (the futex word), the high 32 bits count waiters. <c>sem_post</c> adds 1 to
/// <c>data</c> and calls <c>futex_wake(&amp;value, 1, private)</c> only when the waiter count is not 0; <c>sem_trywait</c>
/// is a CAS of <c>data</c> from <c>d</c> to <c>d - 1</c> while the value is positive. So a waiter thread that
/// <list type="number">
/// <item>adds <c>1 &lt;&lt; 32</c> to <c>data</c> (<see cref="BeginWatch"/>: now every post makes a futex wake),</item>
/// <item>sleeps in <c>futex_waitv</c> on the value words expecting 0 (a value already above 0 returns EAGAIN at once),</item>
/// <item>takes a post with <c>sem_trywait</c> (the caller), and finally subtracts <c>1 &lt;&lt; 32</c> again,</item>
/// </list>
/// is woken by every <c>sem_post</c> of any process (C and Python peers included) exactly as a <c>sem_wait</c>er would.
/// The futex flags are <c>FUTEX2_SIZE_U32</c> plus what glibc derives from the semaphore's own <c>private</c> field: it
/// stores LLL_PRIVATE (0) for a process-private semaphore and LLL_SHARED (128) for a shared one, and passes
/// <c>FUTEX_PRIVATE_FLAG ^ private</c> (FUTEX_PRIVATE_FLAG = FUTEX2_PRIVATE = 128) to the kernel; so do we. glibc's <c>futex_wake(…, 1)</c> wakes one
/// sleeper: when a blocking <c>sem_wait</c>er of this process and the waiter thread both sleep, one post wakes one of them,
/// the other stays asleep until its own post; both are registered in the WaitSignal sleeper count, so both get posts.
/// <see cref="SelfTest"/> checks this layout on the running glibc before the mechanism is chosen.
/// </remarks>
internal sealed unsafe class FutexMultiSemaphoreWait : IMultiSemaphoreWait
{
    private const long WaiterUnit = 1L << 32;
    private const int PrivateFieldOffset = 8;

    public string Mechanism => "futex_waitv";

    public int MaxWatched => Libc.FutexWaitvMax - 1;

    public void BeginWatch(nint semaphore) => Interlocked.Add(ref *(long*)semaphore, WaiterUnit);

    public void EndWatch(nint semaphore) => Interlocked.Add(ref *(long*)semaphore, -WaiterUnit);

    // Little-endian: the value is the first 4 bytes of data.
    public bool MayHaveCount(nint semaphore) => Volatile.Read(ref *(int*)semaphore) != 0;

    public void Wait(nint kick, ReadOnlySpan<nint> semaphores, int timeoutMs)
    {
        int count = Math.Min(semaphores.Length, MaxWatched) + 1;
        Libc.FutexWaitv* waiters = stackalloc Libc.FutexWaitv[count];
        waiters[0] = Entry(kick);
        for (int i = 1; i < count; i++)
        {
            waiters[i] = Entry(semaphores[i - 1]);
        }

        Libc.TimeSpec deadline = MonotonicDeadline(timeoutMs < 0 ? 3_600_000 : timeoutMs);

        // EAGAIN (a value already above 0), ETIMEDOUT, EINTR: all mean "return and re-check".
        _ = Libc.SyscallFutexWaitv(Libc.SysFutexWaitv, waiters, (uint)count, 0, &deadline, Libc.CLOCK_MONOTONIC);
    }

    private static Libc.FutexWaitv Entry(nint semaphore) => new()
    {
        Value = 0,
        Address = (ulong)semaphore,
        // glibc stores LLL_PRIVATE (0) or LLL_SHARED (128) and passes (FUTEX_PRIVATE_FLAG ^ private) to the kernel.
        Flags = Libc.Futex2SizeU32 | ((uint)(*(int*)(semaphore + PrivateFieldOffset) ^ (int)Libc.Futex2Private) & Libc.Futex2Private),
    };

    public static Libc.TimeSpec MonotonicDeadline(int milliseconds)
    {
        Libc.TimeSpec now;
        _ = Libc.ClockGetTime(Libc.CLOCK_MONOTONIC, &now);
        long ns = now.Nanoseconds + ((milliseconds % 1000) * 1_000_000L);
        return new Libc.TimeSpec { Seconds = now.Seconds + (milliseconds / 1000) + (ns / 1_000_000_000), Nanoseconds = ns % 1_000_000_000 };
    }

    /// <summary>
    /// Checks on this machine what the mechanism relies on; null when it holds, else why not (the fallback is chosen).
    /// An unnamed semaphore in native memory stands in for a named one (same <c>struct new_sem</c>).
    /// </summary>
    public static string? SelfTest()
    {
        if (!OperatingSystem.IsLinux() || !BitConverter.IsLittleEndian || IntPtr.Size != 8)
        {
            return "not 64-bit little-endian Linux";
        }

        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return $"no futex_waitv syscall number known for {RuntimeInformation.ProcessArchitecture}";
        }

        try
        {
            string version = Marshal.PtrToStringUTF8((nint)Libc.GnuGetLibcVersion()) ?? "";
            if (!Version.TryParse(version, out Version? parsed) || parsed < new Version(2, 21))
            {
                return $"glibc {version} (needs 2.21+ for the 64-bit semaphore layout)";
            }
        }
        catch (EntryPointNotFoundException)
        {
            return "not glibc";
        }

        byte* sem = (byte*)NativeMemory.AlignedAlloc(64, 64);
        try
        {
            return CheckLayout(sem) ?? CheckSyscall(sem);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return e.Message;
        }
        finally
        {
            NativeMemory.AlignedFree(sem);
        }
    }

    private static string? CheckLayout(byte* sem)
    {
        long* data = (long*)sem;
        new Span<byte>(sem, 64).Fill(0xAB);
        if (Libc.SemInit(sem, 1, 0) != 0)
        {
            return "sem_init(shared) failed";
        }

        bool sharedOk = *data == 0 && *(int*)(sem + PrivateFieldOffset) == (int)Libc.Futex2Private; // LLL_SHARED
        _ = Libc.SemDestroy(sem);
        if (!sharedOk)
        {
            return "unexpected layout of a shared sem_t";
        }

        if (Libc.SemInit(sem, 0, 0) != 0)
        {
            return "sem_init(private) failed";
        }

        try
        {
            if (*data != 0 || *(int*)(sem + PrivateFieldOffset) != 0) // LLL_PRIVATE
            {
                return "unexpected layout of a private sem_t";
            }

            _ = Libc.SemPost(sem);
            Interlocked.Add(ref *data, WaiterUnit);
            _ = Libc.SemPost(sem);
            if (*data != 2 + WaiterUnit)
            {
                return $"sem_post left data 0x{*data:X} (expected value 2, one waiter)";
            }

            if (Libc.SemTryWait(sem) != 0 || *data != 1 + WaiterUnit)
            {
                return "sem_trywait does not decrement the low word";
            }

            Interlocked.Add(ref *data, -WaiterUnit);
            return *data == 1 ? null : "the waiter count is not the high word";
        }
        finally
        {
            _ = Libc.SemDestroy(sem);
        }
    }

    private static string? CheckSyscall(byte* sem)
    {
        if (Libc.SemInit(sem, 0, 1) != 0)
        {
            return "sem_init failed";
        }

        try
        {
            // The value is 1 and we expect 0: EAGAIN at once. Then expect 1: a 1 ms timeout.
            var waiter = new Libc.FutexWaitv { Value = 0, Address = (ulong)sem, Flags = Libc.Futex2SizeU32 | Libc.Futex2Private };
            Libc.TimeSpec deadline = MonotonicDeadline(1);
            long rc = Libc.SyscallFutexWaitv(Libc.SysFutexWaitv, &waiter, 1, 0, &deadline, Libc.CLOCK_MONOTONIC);
            int errno = Marshal.GetLastPInvokeError();
            if (rc != -1 || errno != Libc.EAGAIN)
            {
                return errno == Libc.ENOSYS ? "futex_waitv is not available (ENOSYS)" : $"futex_waitv: rc {rc} errno {errno} (expected EAGAIN)";
            }

            waiter.Value = 1;
            deadline = MonotonicDeadline(1);
            rc = Libc.SyscallFutexWaitv(Libc.SysFutexWaitv, &waiter, 1, 0, &deadline, Libc.CLOCK_MONOTONIC);
            errno = Marshal.GetLastPInvokeError();
            return rc == -1 && errno == Libc.ETIMEDOUT ? null : $"futex_waitv: rc {rc} errno {errno} (expected ETIMEDOUT)";
        }
        finally
        {
            _ = Libc.SemDestroy(sem);
        }
    }
}
