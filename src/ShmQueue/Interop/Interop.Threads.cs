using System.Runtime.InteropServices;

namespace ShmIpc.Interop;

/// <summary>
/// The pthread calls behind <see cref="ShmIpc.Endpoints.ThreadStack"/>: the calling thread's stack bounds, and a
/// thread-specific key whose destructor marks a thread's exit. Linux (glibc >= 2.34, musl) only: the callers check the OS
/// first. On an older glibc these live in libpthread, not libc: the calls throw EntryPointNotFoundException, which the
/// caller takes as "no stack identity" (the guard then reads thread-local storage, as before).
/// </summary>
internal static unsafe partial class Libc
{
    /// <summary>Bytes reserved for a <c>pthread_attr_t</c>: 56 on x86-64 glibc, 64 on arm64; room to spare.</summary>
    public const int PthreadAttrSize = 128;

    public const int PthreadProcessPrivate = 0;

    /// <summary>The calling thread's pthread_t.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_self")]
    [SuppressGCTransition]
    public static partial nuint PthreadSelf();

    /// <summary>Fills <paramref name="attr"/> (<see cref="PthreadAttrSize"/> bytes) with the attributes of a running thread; 0 on success.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_getattr_np")]
    public static partial int PthreadGetAttrNp(nuint thread, void* attr);

    /// <summary>The lowest address and the size of the stack <paramref name="attr"/> describes; 0 on success.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_attr_getstack")]
    public static partial int PthreadAttrGetStack(void* attr, void** stackAddress, nuint* stackSize);

    /// <summary>Releases what <see cref="PthreadGetAttrNp"/> allocated in <paramref name="attr"/>; 0 on success.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_attr_destroy")]
    public static partial int PthreadAttrDestroy(void* attr);

    /// <summary>Creates a thread-specific key whose <paramref name="destructor"/> runs at each thread's exit for a non-null value; 0 on success.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_key_create")]
    public static partial int PthreadKeyCreate(uint* key, nint destructor);

    /// <summary>The calling thread's value for <paramref name="key"/> (null if none).</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_getspecific")]
    public static partial void* PthreadGetSpecific(uint key);

    /// <summary>Sets the calling thread's value for <paramref name="key"/>; 0 on success.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_setspecific")]
    public static partial int PthreadSetSpecific(uint key, void* value);

    /// <summary>Initialises a spin lock (unlocked); 0 on success.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_spin_init")]
    public static partial int PthreadSpinInit(int* spinlock, int processShared);

    /// <summary>Locks a spin lock for the calling thread; 0 on success.</summary>
    [LibraryImport(LibraryName, EntryPoint = "pthread_spin_lock")]
    public static partial int PthreadSpinLock(int* spinlock);

    /// <summary>This process's id.</summary>
    [LibraryImport(LibraryName, EntryPoint = "getpid")]
    public static partial int GetPid();

    /// <summary>The calling thread's kernel id (glibc >= 2.30, musl >= 1.2.2).</summary>
    [LibraryImport(LibraryName, EntryPoint = "gettid")]
    public static partial int GetTid();
}
