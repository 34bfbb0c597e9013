using System.IO.MemoryMappedFiles;
using ShmIpc.Layout;
using ShmIpc.Signaling;
using ShmIpc.Timing;

namespace ShmIpc.Memory;

/// <summary>
/// A named region of shared memory: a header (<see cref="SegmentHeaderDescriptor"/>), a control block
/// for the structure's counters and a data region for its bytes, plus up to eight named semaphores
/// whose names derive from the segment's. The creator unlinks all of it on dispose unless told to keep it.
/// </summary>
internal sealed unsafe class ShmSegment : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly ISharedMemoryPlatform _platform;
    private byte* _base;
    private int _disposed;
    private OwnerTrust _trust;

    private ShmSegment(string name, MemoryMappedFile file, MemoryMappedViewAccessor view, long length, bool isCreator, ISharedMemoryPlatform platform)
    {
        Name = name;
        OsName = ShmName.ToOsName(name);
        _file = file;
        _view = view;
        _platform = platform;
        Length = length;
        IsCreator = isCreator;
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + view.PointerOffset;
    }

    public string Name { get; }

    public string OsName { get; }

    public long Length { get; }

    public bool IsCreator { get; }

    public byte* Base => _base;

    public byte* Control => _base + SegmentHeaderDescriptor.HeaderSize;

    public long ControlSize { get; private set; }

    public byte* Data => Control + ControlSize;

    public long DataSize { get; private set; }

    public int SemaphoreCount { get; private set; }

    public ProcessIdentity Creator { get; private set; }

    public ISharedMemoryPlatform Platform => _platform;

    /// <summary>
    /// Creates a segment. <paramref name="initialize"/> fills the control block and data region before
    /// the header is published, so no opener ever sees them half-made. A leftover segment of the same
    /// name whose creator is dead and that no process maps is removed and recreated; a live one is an error.
    /// </summary>
    public static ShmSegment Create(string name, SegmentKind kind, long controlSize, long dataSize, int semaphoreCount, bool groupAccess,
        Action<ShmSegment> initialize, ISharedMemoryPlatform? platform = null, bool keep = false,
        uint layoutVersion = SegmentHeaderDescriptor.CurrentLayoutVersion)
    {
        ShmName.Validate(name);
        platform ??= SharedMemoryPlatform.Current;
        StaleSweeper.Poke();
        if (controlSize < 0 || controlSize % SegmentHeaderDescriptor.RegionAlignment != 0 || dataSize < 0 || semaphoreCount is < 0 or > SegmentHeaderDescriptor.MaxSemaphores)
        {
            throw new ArgumentOutOfRangeException(nameof(controlSize), "Internal error: bad segment geometry.");
        }

        string osName = ShmName.ToOsName(name);
        long total = SegmentHeaderDescriptor.HeaderSize + controlSize + dataSize;
        FileStream stream = CreateFileRecoveringStale(name, osName, kind, groupAccess, platform);
        ShmSegment? segment = null;
        try
        {
            SetLength(stream, total, osName);
            if (kind == SegmentKind.SideMessage)
            {
                // Its pages are taken now, so a full /dev/shm is an IOException here and never a SIGBUS on a later write.
                platform.Reserve(stream, total);
            }

            MemoryMappedFile file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            MemoryMappedViewAccessor view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite);
            segment = new ShmSegment(name, file, view, total, isCreator: true, platform)
            {
                ControlSize = controlSize,
                DataSize = dataSize,
                SemaphoreCount = semaphoreCount,
                Creator = platform.CurrentProcess,
            };

            SegmentHeaderDescriptor.Write(segment._base, kind, (ulong)total, (ulong)controlSize, (ulong)dataSize,
                (groupAccess ? SegmentHeaderDescriptor.FlagGroupAccess : 0) | (keep ? SegmentHeaderDescriptor.FlagKeep : 0),
                (uint)semaphoreCount, platform.CurrentProcess, layoutVersion);
            for (int i = 0; i < semaphoreCount; i++)
            {
                platform.CreateSemaphore(ShmName.SemaphoreOsName(osName, i), groupAccess).Dispose();
            }

            initialize(segment);
            SegmentHeaderDescriptor.Publish(segment._base);
            return segment;
        }
        catch
        {
            if (segment is not null)
            {
                segment.Unlink();
                segment.Dispose();
            }
            else
            {
                stream.Dispose();
                platform.UnlinkSegment(osName);
            }

            throw;
        }
    }

    /// <summary>Sizes a new segment file; a size the file system refuses (EFBIG: RLIMIT_FSIZE, tmpfs limits) is an IOException as any allocation failure.</summary>
    private static void SetLength(FileStream stream, long total, string osName)
    {
        try
        {
            stream.SetLength(total);
        }
        catch (ArgumentOutOfRangeException e)
        {
            // FileStream reports EFBIG as an argument error; here it is the machine's limit, not a caller's mistake.
            throw new IOException($"Could not size shared memory segment '{osName}' to {total} bytes: {e.Message}", e);
        }
    }

    /// <summary>
    /// Opens an existing segment, validating its header against the file's real length. Waits up to
    /// <paramref name="initTimeout"/> for a creator that is still initialising it.
    /// </summary>
    /// <exception cref="FileNotFoundException">No segment of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The header is wrong, truncated, foreign, of another version or kind.</exception>
    /// <exception cref="UnauthorizedAccessException">
    /// The segment belongs to another user (or anyone may write it) and <paramref name="trust"/> does not name its owner;
    /// or this user may not open it. The message names the segment, its owner and its mode.
    /// </exception>
    public static ShmSegment Open(string name, SegmentKind kind, TimeSpan initTimeout, ISharedMemoryPlatform? platform = null, OwnerTrust trust = default)
    {
        ShmName.Validate(name);
        platform ??= SharedMemoryPlatform.Current;
        StaleSweeper.Poke();
        string osName = ShmName.ToOsName(name);
        long deadline = Deadline.From(initTimeout);
        var spinner = new SpinWait();
        while (true)
        {
            FileStream stream;
            try
            {
                stream = platform.OpenSegmentFile(osName);
            }
            catch (FileNotFoundException e)
            {
                throw new FileNotFoundException($"No shared-memory segment named '{name}' exists ({osName}).", osName, e);
            }
            catch (UnauthorizedAccessException e)
            {
                string owner = platform.GetSegmentOwner(osName) is FileOwner o ? OwnerCheck.Describe(o) : "an owner that cannot be read";
                throw new UnauthorizedAccessException($"Shared-memory segment '{name}' (/dev/shm/{osName}) is owned by {owner}, and this process " +
                    $"(uid {platform.EffectiveUserId}) may not open it. Its creator can allow its group with GroupAccess = true.", e);
            }

            try
            {
                OwnerCheck.Demand(platform.GetOwner(stream), trust, platform.EffectiveUserId, $"Shared-memory segment '{name}' (/dev/shm/{osName})");
            }
            catch
            {
                stream.Dispose();
                throw;
            }

            long length = stream.Length;
            (ShmSegmentError Error, string Detail)? problem;
            if (length < SegmentHeaderDescriptor.HeaderSize)
            {
                stream.Dispose();
                problem = (ShmSegmentError.Truncated, $"the file is {length} bytes, shorter than the {SegmentHeaderDescriptor.HeaderSize}-byte header");
            }
            else
            {
                ShmSegment segment = Map(name, stream, length, platform);
                SegmentHeaderDescriptor.Fields fields = SegmentHeaderDescriptor.Read(segment._base);
                problem = SegmentHeaderDescriptor.Validate(fields, new ReadOnlySpan<byte>(segment._base, SegmentHeaderDescriptor.HeaderSize), length, kind);
                if (problem is null)
                {
                    segment.ControlSize = (long)fields.ControlSize;
                    segment.DataSize = (long)fields.DataSize;
                    segment.SemaphoreCount = (int)fields.SemaphoreCount;
                    segment.Creator = fields.Creator;
                    segment._trust = trust;
                    return segment;
                }

                segment.Dispose();
            }

            // A creator between open(2) and publishing the magic: give it until the deadline.
            bool maybeInitialising = problem.Value.Error is ShmSegmentError.NotInitialized
                || (problem.Value.Error is ShmSegmentError.Truncated && length < SegmentHeaderDescriptor.HeaderSize);
            if (!maybeInitialising || System.Diagnostics.Stopwatch.GetTimestamp() >= deadline)
            {
                throw new ShmInvalidSegmentException(name, problem.Value.Error, problem.Value.Detail);
            }

            spinner.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>Opens semaphore <paramref name="index"/> of this segment.</summary>
    public NamedSemaphore OpenSemaphore(int index)
    {
        if ((uint)index >= (uint)SemaphoreCount)
        {
            throw new ArgumentOutOfRangeException(nameof(index));
        }

        string osName = ShmName.SemaphoreOsName(OsName, index);
        string what = $"Semaphore {index} of shared-memory segment '{Name}' (/dev/shm/sem.{osName})";
        if (!IsCreator && _platform.GetSemaphoreOwner(osName) is FileOwner owner)
        {
            // The same rule as the segment's: a semaphore another user planted under our name is refused too.
            OwnerCheck.Demand(owner, _trust, _platform.EffectiveUserId, what);
        }

        try
        {
            NamedSemaphore semaphore = _platform.OpenSemaphore(osName);
            if (!IsCreator && _platform.GetSemaphoreOwner(osName) is FileOwner planted)
            {
                // Looked at again once open: a semaphore another user made between the first look and sem_open is refused too.
                try
                {
                    OwnerCheck.Demand(planted, _trust, _platform.EffectiveUserId, what);
                }
                catch
                {
                    semaphore.Dispose();
                    throw;
                }
            }

            return semaphore;
        }
        catch (UnauthorizedAccessException e) when (e.InnerException is null && !e.Message.StartsWith(what, StringComparison.Ordinal))
        {
            string described = _platform.GetSemaphoreOwner(osName) is FileOwner o ? OwnerCheck.Describe(o) : "an owner that cannot be read";
            throw new UnauthorizedAccessException($"{what} is owned by {described}, and this process (uid {_platform.EffectiveUserId}) may not open it.", e);
        }
    }

    /// <summary>Removes the segment's name and its semaphores' names. Processes that have them open keep using them.</summary>
    public void Unlink() => UnlinkNames(_platform, OsName, SemaphoreCount);

    internal static void UnlinkNames(ISharedMemoryPlatform platform, string osName, int semaphoreCount)
    {
        platform.UnlinkSegment(osName);
        for (int i = 0; i < semaphoreCount; i++)
        {
            platform.UnlinkSemaphore(ShmName.SemaphoreOsName(osName, i));
        }
    }

    /// <summary>Unmaps. The caller guarantees no thread still uses <see cref="Base"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }

    private static ShmSegment Map(string name, FileStream stream, long length, ISharedMemoryPlatform platform)
    {
        try
        {
            MemoryMappedFile file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            MemoryMappedViewAccessor view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.ReadWrite);
            return new ShmSegment(name, file, view, length, isCreator: false, platform);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static FileStream CreateFileRecoveringStale(string name, string osName, SegmentKind kind, bool groupAccess, ISharedMemoryPlatform platform)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return platform.CreateSegmentFile(osName, groupAccess);
            }
            catch (IOException) when (platform.SegmentExists(osName))
            {
                // Exists: recreate only when provably stale (creator dead, nobody maps it). Busy may be a sweep of
                // another process holding it for a moment, or a real user: a few short retries tell them apart.
                Removal removal = TryRemoveStale(osName, platform, automatic: false, out string? reason);
                if (removal == Removal.Busy && attempt < 20)
                {
                    Thread.Sleep(5);
                    continue;
                }

                if (removal is Removal.Kept or Removal.Busy)
                {
                    throw new IOException($"A shared-memory segment named '{name}' exists already ({reason}). Open it, or choose another name.");
                }
            }
        }
    }

    /// <summary>What <see cref="TryRemoveStale"/> did.</summary>
    internal enum Removal
    {
        /// <summary>It was stale and is removed, with its semaphores.</summary>
        Removed,

        /// <summary>No such segment (any more).</summary>
        Gone,

        /// <summary>Not stale, or not ours to judge: the reason says why.</summary>
        Kept,

        /// <summary>A process holds it open (its shared lock, or another sweep's exclusive one).</summary>
        Busy,
    }

    /// <summary>
    /// Removes segment <paramref name="osName"/> and its semaphores if it is stale, so that nobody can slip in between
    /// the verdict and the removal: the verdict is made on a descriptor that holds the exclusive flock (no user maps it,
    /// and none can start to: openers take the shared one and fail), the name must still lead to that same inode, and
    /// the semaphores go first and the file last (a creator cannot reuse the name while the file exists, and makes its
    /// semaphores only after its file).
    /// </summary>
    internal static Removal TryRemoveStale(string osName, ISharedMemoryPlatform platform, bool automatic, out string? reason)
    {
        reason = null;
        if (platform.GetSegmentOwner(osName) is not FileOwner facts)
        {
            return Removal.Gone;
        }

        // Never open what is not a regular file (a FIFO would block the open), nor lock a file a creator is still
        // sizing (it takes its shared lock before it sizes the file: a full-size file is locked by its creator).
        if (!facts.IsRegularFile)
        {
            reason = "it is not a regular file, so it is not ours";
            return Removal.Kept;
        }

        // A side segment's name says who made it, so one whose creator died before publishing its header is judged too.
        bool orphan = SideSegments.SideSegment.IsCreatorDeadByName(osName, platform);
        if (facts.Size < SegmentHeaderDescriptor.HeaderSize && !orphan)
        {
            reason = ShortReason;
            return Removal.Kept;
        }

        if (!TryOpenForRemoval(osName, platform, out FileStream? opened, out reason))
        {
            return Removal.Busy;
        }

        using FileStream? stream = opened;
        if (stream is null)
        {
            return Removal.Gone;
        }

        // The header first (it never changes once published; a creator that has not published it is alive or dead
        // either way), then the lock: a live creator is named as such, not as "busy".
        int semaphores = 0;
        reason = facts.Size < SegmentHeaderDescriptor.HeaderSize ? null : JudgeHeader(stream, platform, automatic, out semaphores, orphan);
        if (reason is not null)
        {
            return Removal.Kept;
        }

        if (!platform.TryLockExclusive(stream))
        {
            reason = "its creator is gone but another process still maps it";
            return Removal.Busy;
        }

        if (platform.GetSegmentOwner(osName) is not FileOwner now || now.Inode != platform.GetOwner(stream).Inode)
        {
            reason = "its name was taken by a new segment meanwhile";
            return Removal.Kept;
        }

        for (int i = 0; i < semaphores; i++)
        {
            platform.UnlinkSemaphore(ShmName.SemaphoreOsName(osName, i));
        }

        platform.UnlinkSegment(osName);
        return Removal.Removed;
    }

    /// <summary>
    /// Opens a segment to judge or remove it. False while another sweeper (of another process, or this process's
    /// automatic sweep) holds the segment's exclusive lock to remove it: the open takes a shared flock (.NET's
    /// FileShare emulation on Unix) and fails with a sharing violation meanwhile. That is a moment's business of
    /// someone else, not an error of the caller: it is reported as busy (<see cref="CreateFileRecoveringStale"/>
    /// retries it), never thrown out of a Create or a sweep.
    /// </summary>
    private static bool TryOpenForRemoval(string osName, ISharedMemoryPlatform platform, out FileStream? stream, out string? reason)
    {
        try
        {
            stream = platform.OpenSegmentForRemoval(osName);
            reason = null;
            return true;
        }
        catch (IOException)
        {
            stream = null;
            bool exists = platform.SegmentExists(osName);
            reason = exists ? "another process is removing it" : null;
            return !exists; // gone meanwhile: the other sweeper finished
        }
    }

    private const string ShortReason =
        "it is shorter than a header, so its creator cannot be told; remove it with ShmMaintenance.RemoveStaleSegments once its creator is gone";

    /// <summary>
    /// Null when the segment is stale (safe to remove): its header is ours, its creator is dead and no process maps it.
    /// Otherwise why it is not. With <paramref name="automatic"/> (the sweep that runs by itself), a segment whose
    /// creator asked to keep it (<see cref="SegmentHeaderDescriptor.FlagKeep"/>) is not stale either. Changes nothing
    /// (tools use it to explain); <see cref="TryRemoveStale"/> is what removes.
    /// </summary>
    internal static string? StaleReason(string osName, ISharedMemoryPlatform platform, out int semaphoreCount, bool automatic = false)
    {
        semaphoreCount = SegmentHeaderDescriptor.MaxSemaphores;
        if (platform.GetSegmentOwner(osName) is not FileOwner facts)
        {
            return null;
        }

        if (!facts.IsRegularFile)
        {
            return "it is not a regular file, so it is not ours";
        }

        bool orphan = SideSegments.SideSegment.IsCreatorDeadByName(osName, platform);
        if (facts.Size < SegmentHeaderDescriptor.HeaderSize && !orphan)
        {
            return ShortReason;
        }

        if (!TryOpenForRemoval(osName, platform, out FileStream? opened, out string? busy))
        {
            return busy;
        }

        using (FileStream? stream = opened)
        {
            if (stream is null)
            {
                return null;
            }

            if (facts.Size >= SegmentHeaderDescriptor.HeaderSize && JudgeHeader(stream, platform, automatic, out semaphoreCount, orphan) is string reason)
            {
                return reason;
            }
        }

        return platform.IsInUse(osName) ? "its creator is gone but another process still maps it" : null;
    }

    /// <summary>Reads the header from <paramref name="stream"/>; null when it is ours and its creator is dead (and, if automatic, it is not kept).</summary>
    private static string? JudgeHeader(FileStream stream, ISharedMemoryPlatform platform, bool automatic, out int semaphoreCount, bool sideOrphan = false)
    {
        semaphoreCount = SegmentHeaderDescriptor.MaxSemaphores;
        byte* header = stackalloc byte[SegmentHeaderDescriptor.HeaderSize];
        var span = new Span<byte>(header, SegmentHeaderDescriptor.HeaderSize);
        if (stream.Read(span) != span.Length)
        {
            return ShortReason;
        }

        // A private copy of the header, read through its descriptor like any other.
        SegmentHeaderDescriptor.Fields fields = SegmentHeaderDescriptor.Read(header);
        if (fields.Magic == 0 && sideOrphan)
        {
            semaphoreCount = 0;
            return null; // A side segment whose creator (named in its name) died before it published the header.
        }

        if ((fields.Magic != 0 && fields.Magic != SegmentHeaderDescriptor.MagicValue) || fields.Checksum != SegmentHeaderDescriptor.Checksum(span))
        {
            return "it does not carry a valid ShmIpc header, so it is not ours to remove";
        }

        int pid = fields.CreatorPid;
        semaphoreCount = (int)Math.Min(fields.SemaphoreCount, SegmentHeaderDescriptor.MaxSemaphores);
        if (fields.Kind == SegmentKind.SideMessage && fields.Magic != 0)
        {
            // Its owner depends on its state (sender, host or consumer), not only on its creator.
            return SideSegments.SideSegment.StaleReason(stream, fields, platform);
        }

        if (platform.IsAlive(fields.Creator))
        {
            return $"its creator, pid {pid}, is running";
        }

        if (automatic && (fields.Flags & SegmentHeaderDescriptor.FlagKeep) != 0)
        {
            return $"its creator, pid {pid}, is gone but asked to keep it (UnlinkOnDispose = false)";
        }

        return null;
    }
}
