using System.Runtime.InteropServices;

namespace ShmIpc.Interop;

/// <summary>
/// The pthread calls behind <see cref="ShmIpc.Endpoints.ThreadStack"/>: the calling thread's stack bounds, and a
/// thread-specific key whose destructor marks a thread's exit. Linux (glibc, musl) only: the callers check the OS first.
/// </summary>
internal static unsafe partial class Libc
{
    /// <summary>Bytes reserved for a <c>pthread_attr_t</c>: 56 on x86-64 glibc, 64 on arm64; room to spare.</summary>
    public const int PthreadAttrSize = 128;

    public const int PthreadProcessPrivate = 0;

    [LibraryImport(LibraryName, EntryPoint = "pthread_self")]
    [SuppressGCTransition]
    public static partial nuint PthreadSelf();

    [LibraryImport(LibraryName, EntryPoint = "pthread_getattr_np")]
    public static partial int PthreadGetAttrNp(nuint thread, void* attr);

    [LibraryImport(LibraryName, EntryPoint = "pthread_attr_getstack")]
    public static partial int PthreadAttrGetStack(void* attr, void** stackAddress, nuint* stackSize);

    [LibraryImport(LibraryName, EntryPoint = "pthread_attr_destroy")]
    public static partial int PthreadAttrDestroy(void* attr);

    [LibraryImport(LibraryName, EntryPoint = "pthread_key_create")]
    public static partial int PthreadKeyCreate(uint* key, nint destructor);

    [LibraryImport(LibraryName, EntryPoint = "pthread_setspecific")]
    public static partial int PthreadSetSpecific(uint key, void* value);

    [LibraryImport(LibraryName, EntryPoint = "pthread_spin_init")]
    public static partial int PthreadSpinInit(int* spinlock, int processShared);

    [LibraryImport(LibraryName, EntryPoint = "pthread_spin_lock")]
    public static partial int PthreadSpinLock(int* spinlock);

    [LibraryImport(LibraryName, EntryPoint = "getpid")]
    [SuppressGCTransition]
    public static partial int GetPid();

    [LibraryImport(LibraryName, EntryPoint = "gettid")]
    public static partial int GetTid();
}
