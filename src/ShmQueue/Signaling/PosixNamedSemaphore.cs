using System.Runtime.InteropServices;
using ShmIpc.Interop;

namespace ShmIpc.Signaling;

/// <summary>
/// A POSIX named semaphore (<c>sem_open</c>). Timed waits measure CLOCK_MONOTONIC through
/// <c>sem_clockwait</c> (glibc 2.30+), so a wall-clock jump neither stretches nor cuts a wait; where
/// that call is missing the wait falls back to <c>sem_timedwait</c> on CLOCK_REALTIME.
/// EINTR is retried against the same deadline.
/// </summary>
internal sealed unsafe class PosixNamedSemaphore : NamedSemaphore
{
    private static bool s_noClockWait;

    private readonly SafeSemaphoreHandle _handle;

    private PosixNamedSemaphore(string osName, SafeSemaphoreHandle handle)
        : base(osName) => _handle = handle;

    public static PosixNamedSemaphore Create(string osName, uint mode)
    {
        string posixName = "/" + osName;

        // A semaphore of the same name left by a crashed run would carry a stale count: start clean.
        _ = Libc.SemUnlink(posixName);
        SafeSemaphoreHandle handle = Libc.SemOpen(posixName, Libc.O_CREAT | Libc.O_EXCL, mode, 0);
        if (handle.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw ErrnoException(errno, "create", osName);
        }

        return new PosixNamedSemaphore(osName, handle);
    }

    public static PosixNamedSemaphore Open(string osName)
    {
        SafeSemaphoreHandle handle = Libc.SemOpenExisting("/" + osName, 0);
        if (handle.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw ErrnoException(errno, "open", osName);
        }

        return new PosixNamedSemaphore(osName, handle);
    }

    public static bool Unlink(string osName)
    {
        if (Libc.SemUnlink("/" + osName) == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno == Libc.ENOENT ? false : throw ErrnoException(errno, "unlink", osName);
    }

    public override void Post()
    {
        if (Libc.SemPost(_handle) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();

            // A saturated count already wakes every waiter there can be.
            if (errno != Libc.EOVERFLOW)
            {
                throw ErrnoException(errno, "post", OsName);
            }
        }
    }

    public override bool TryWait()
    {
        while (true)
        {
            if (Libc.SemTryWait(_handle) == 0)
            {
                return true;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EAGAIN)
            {
                return false;
            }

            if (errno != Libc.EINTR)
            {
                throw ErrnoException(errno, "trywait", OsName);
            }
        }
    }

    public override bool Wait(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return TryWait();
        }

        Libc.TimeSpec deadline = Deadline(s_noClockWait ? 0 /* CLOCK_REALTIME */ : Libc.CLOCK_MONOTONIC, timeout);
        while (true)
        {
            int rc;
            if (!s_noClockWait)
            {
                try
                {
                    rc = Libc.SemClockWait(_handle, Libc.CLOCK_MONOTONIC, &deadline);
                }
                catch (EntryPointNotFoundException)
                {
                    s_noClockWait = true;
                    deadline = Deadline(0, timeout);
                    continue;
                }
            }
            else
            {
                rc = Libc.SemTimedWait(_handle, &deadline);
            }

            if (rc == 0)
            {
                return true;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.ETIMEDOUT)
            {
                return false;
            }

            if (errno != Libc.EINTR)
            {
                throw ErrnoException(errno, "wait", OsName);
            }
        }
    }

    public override int CurrentCount =>
        Libc.SemGetValue(_handle, out int value) == 0 ? value : throw ErrnoException(Marshal.GetLastPInvokeError(), "read", OsName);

    public override nint AcquireAddress()
    {
        bool added = false;
        _handle.DangerousAddRef(ref added);
        return _handle.DangerousGetHandle();
    }

    public override void ReleaseAddress() => _handle.DangerousRelease();

    public override void Dispose() => _handle.Dispose();

    private static Libc.TimeSpec Deadline(int clock, TimeSpan timeout)
    {
        Libc.TimeSpec now;
        if (Libc.ClockGetTime(clock, &now) != 0)
        {
            throw ErrnoException(Marshal.GetLastPInvokeError(), "read the clock for", "semaphore");
        }

        long ns = now.Nanoseconds + (timeout.Ticks % TimeSpan.TicksPerSecond * 100);
        long seconds = now.Seconds + (timeout.Ticks / TimeSpan.TicksPerSecond) + (ns / 1_000_000_000);
        return new Libc.TimeSpec { Seconds = seconds, Nanoseconds = ns % 1_000_000_000 };
    }

    internal static Exception ErrnoException(int errno, string operation, string osName)
    {
        string message = $"Cannot {operation} named semaphore '{osName}': {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).";
        return errno switch
        {
            Libc.ENOENT => new FileNotFoundException(message, osName),
            Libc.EACCES or Libc.EPERM => new UnauthorizedAccessException(message),
            Libc.EINVAL or Libc.ENAMETOOLONG => new ArgumentException(message),
            _ => new IOException(message, errno),
        };
    }
}
