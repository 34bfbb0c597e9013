using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ShmIpc.Interop;

namespace ShmIpc.Endpoints;

/// <summary>
/// A thread told apart from every other thread of the process without reading thread-local storage: by where its stack
/// is, while it lives. <see cref="IsCurrentThread"/> costs a few loads and compares where a <c>[ThreadStatic]</c> read
/// costs a call into the runtime's TLS resolver and a chain of dependent loads (measured on the queue's per-message
/// guard, issue 16: the call is most of that guard's cost). Linux only; elsewhere, or when a call below fails,
/// <see cref="TryDescribeCurrentThread"/> says no and callers keep their thread-static path.
/// </summary>
/// <remarks>
/// Design:
/// - Identity. The stacks of threads that are alive at the same time are disjoint mappings, so an address inside a
///   living thread T's stack range can be the stack pointer of T alone. <see cref="IsCurrentThread"/> takes the address
///   of a local (it lies in the caller's frame, on the calling thread's stack) and checks it against T's range. The
///   range comes from <c>pthread_getattr_np</c> and is cut to what is safe: for a thread pthreads allocated, the whole
///   block (one mapping of its own); for the main thread, whose stack grows on demand below what is mapped, only the
///   part mapped at registration (/proc/self/maps; a growsdown mapping never shrinks), so no other mapping can lie
///   inside. A call from a frame deeper than that is simply not recognised (the caller falls back).
/// - Lifetime. Once T exits, its stack can be given to a new thread (glibc's stack cache) or unmapped and reused in
///   parts by others, so the range proves nothing any more: T must be known alive. At registration T initialises and
///   locks a process-private spin lock (<c>pthread_spin_init</c>, <c>pthread_spin_lock</c>, native memory) and stores its
///   address under a thread-specific key whose destructor is <c>pthread_spin_unlock</c>. The destructor runs on T as it
///   exits, before its stack is released (glibc and musl run key destructors first, and a stack is reused or unmapped
///   only after its thread is gone), so from then on the lock word holds the unlocked representation. The word is read,
///   never interpreted: its locked bytes are recorded right after the lock and compared. A thread that later runs on
///   any part of T's old stack obtained that memory after the store and sees it. The main thread's stack is never
///   released while the process lives.
/// - Memory. The lock words are native and never freed: a destructor may run after every managed reference to the
///   word is gone (the runtime drops a thread's statics before the OS thread ends). Four bytes per thread that ever
///   registered.
/// - Not covered (none happens in a .NET process): a process that forks and then runs threads in the child (the
///   forked-away threads never run their destructors); a thread ended by a raw exit system call (no destructors, yet
///   its stack is reused); a key value set during the last destructor round (never destroyed); user-mode stacks
///   switched between threads (coroutines placed inside a thread's stack).
/// </remarks>
internal readonly unsafe struct ThreadStack
{
    private static readonly uint s_exitKey;
    private static readonly bool s_supported;

    private readonly nuint _low;
    private readonly nuint _size;
    private readonly int* _exitMark;
    private readonly int _aliveValue;

    static ThreadStack()
    {
        s_supported = OperatingSystem.IsLinux() && TryCreateExitKey(out s_exitKey);
    }

    private ThreadStack(nuint low, nuint size, int* exitMark, int aliveValue)
    {
        _low = low;
        _size = size;
        _exitMark = exitMark;
        _aliveValue = aliveValue;
    }

    /// <summary>Whether this describes a thread (false for the default value: <see cref="IsCurrentThread"/> is then always false).</summary>
    public bool IsKnown => _size != 0;

    /// <summary>
    /// True when the calling thread is the thread described and it is alive (it always is, seen from itself). False for
    /// any other thread, for the described thread in a frame deeper than its range, and for <c>default</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsCurrentThread()
    {
        byte probe = 0;
        return (nuint)(&probe) - _low < _size && Volatile.Read(ref *_exitMark) == _aliveValue;
    }

    /// <summary>
    /// Describes the calling thread (once per managed thread: a few system calls). False where that is not possible; it
    /// never throws (an identity is an optimisation: without one the caller reads thread-local storage).
    /// </summary>
    public static bool TryDescribeCurrentThread(out ThreadStack stack)
    {
        stack = default;
        try
        {
            return s_supported && TryDescribe(out stack);
        }
#pragma warning disable CA1031 // whatever the platform throws here, the answer is "no identity", never a failed call
        catch (Exception)
#pragma warning restore CA1031
        {
            stack = default;
            return false;
        }
    }

    private static bool TryDescribe(out ThreadStack stack)
    {
        stack = default;

        byte probe = 0;
        nuint here = (nuint)(&probe);
        byte* attr = stackalloc byte[Libc.PthreadAttrSize];
        void* address;
        nuint size;
        if (Libc.PthreadGetAttrNp(Libc.PthreadSelf(), attr) != 0)
        {
            return false;
        }

        int got = Libc.PthreadAttrGetStack(attr, &address, &size);
        if (Libc.PthreadAttrDestroy(attr) != 0 || got != 0)
        {
            return false;
        }

        nuint low = (nuint)address;
        nuint high = low + size;
        if (here < low || here >= high)
        {
            return false; // not on the stack pthreads reports (an alternate stack?): no identity
        }

        if (IsMainThread())
        {
            if (MappedStackStart(here) is not nuint mapped)
            {
                return false;
            }

            low = Math.Max(low, mapped);
        }

        // The exit mark: locked while this thread runs, unlocked by the key's destructor as it exits. A thread described
        // before (a runtime that attached this OS thread again) keeps its mark: a second one would replace the first
        // under the key, and the first would then never be unlocked (it would read "alive" after the thread exits).
        int* mark = (int*)Libc.PthreadGetSpecific(s_exitKey);
        if (mark is not null)
        {
            stack = new ThreadStack(low, high - low, mark, Volatile.Read(ref *mark));
            return true;
        }

        mark = (int*)NativeMemory.AllocZeroed(sizeof(int));
        if (Libc.PthreadSpinInit(mark, Libc.PthreadProcessPrivate) != 0)
        {
            NativeMemory.Free(mark);
            return false;
        }

        int unlocked = *mark;
        if (Libc.PthreadSpinLock(mark) != 0 || *mark == unlocked || Libc.PthreadSetSpecific(s_exitKey, mark) != 0)
        {
            NativeMemory.Free(mark); // not under the key: no destructor will touch it
            return false;
        }

        stack = new ThreadStack(low, high - low, mark, *mark);
        return true;
    }

    /// <summary>Test hook: whether the thread described has run its exit destructor.</summary>
    internal bool HasExited => _exitMark is not null && Volatile.Read(ref *_exitMark) != _aliveValue;

    /// <summary>
    /// The start of the <c>[stack]</c> mapping that holds <paramref name="here"/> (/proc/self/maps): the part of the main
    /// thread's stack mapped now. A growsdown mapping never shrinks, so this part stays the main thread's. Null when
    /// <paramref name="here"/> is not in the process's <c>[stack]</c> mapping (a stack set up otherwise, as under valgrind):
    /// no identity then.
    /// </summary>
    private static nuint? MappedStackStart(nuint here)
    {
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash
                && ulong.TryParse(line.AsSpan(0, dash), System.Globalization.NumberStyles.AllowHexSpecifier, null, out ulong start)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.AllowHexSpecifier, null, out ulong end)
                && here >= start && here < end)
            {
                return line.EndsWith("[stack]", StringComparison.Ordinal) ? (nuint)start : null;
            }
        }

        return null;
    }

    /// <summary>Whether the calling thread is the process's main thread (its thread id is the process id), whose stack pthreads did not allocate.</summary>
    private static bool IsMainThread()
    {
        try
        {
            return Libc.GetTid() == Libc.GetPid();
        }
        catch (EntryPointNotFoundException)
        {
            return true; // no gettid (an old libc): treat every thread as the main one (the narrower range, or none)
        }
    }

    private static bool TryCreateExitKey(out uint key)
    {
        key = 0;
        try
        {
            // pthread_spin_unlock takes one pointer and returns an int; a key destructor returns void. Calling it through
            // that type is fine on the Linux ABIs (the return register is simply ignored), though not in ISO C's letter.
            if (!NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "pthread_spin_unlock", out nint unlock)
                && !(NativeLibrary.TryLoad("libc.so.6", out nint libc) && NativeLibrary.TryGetExport(libc, "pthread_spin_unlock", out unlock)))
            {
                return false;
            }

            uint created;
            if (Libc.PthreadKeyCreate(&created, unlock) != 0)
            {
                return false;
            }

            key = created;
            return true;
        }
        catch (Exception exception) when (exception is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
