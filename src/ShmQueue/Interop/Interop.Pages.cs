using System.Runtime.InteropServices;

namespace ShmIpc.Interop;

/// <summary>The libc calls about a process's own pages (residency, populating them at once), for <see cref="ShmIpc.Memory.PagePrefault"/> only.</summary>
internal static unsafe partial class Libc
{
    /// <summary><c>madvise</c> advice (Linux 5.14+): fault in every page of the range, writable, in one call.</summary>
    public const int MADV_POPULATE_WRITE = 23;

    [LibraryImport(LibraryName, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport(LibraryName, EntryPoint = "mincore", SetLastError = true)]
    public static partial int Mincore(void* address, nuint length, byte* vector);
}
