using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// Finds every ShmIpc object on the machine and reads what it holds, without writing a byte: the engine of
/// <c>list</c>, <c>inspect</c> and <c>doctor</c>. Returns records (<see cref="ListReport"/>, <see cref="InspectReport"/>);
/// printing them is the renderers' business.
/// </summary>
internal sealed class ShmInspector
{
    private readonly ISharedMemoryPlatform _platform;

    public ShmInspector(ISharedMemoryPlatform? platform = null) => _platform = platform ?? SharedMemoryPlatform.Current;

    public ISharedMemoryPlatform Platform => _platform;

    /// <summary>Every ShmIpc segment (by name) and then every semaphore (by name).</summary>
    public ListReport List()
    {
        ProcessTable processes = ProcessTable.Scan();
        var objects = new List<ListEntry>();
        foreach (string osName in _platform.EnumerateSegments(ShmName.OsPrefix).Order(StringComparer.Ordinal))
        {
            objects.Add(Read(osName, processes).Object);
        }

        objects.AddRange(Semaphores(processes));
        return new ListReport(objects, processes.UnreadableProcesses);
    }

    /// <summary>Segment <paramref name="name"/> (as given to Create, or its OS name or path); null when no such segment exists.</summary>
    public InspectReport? Inspect(string name)
    {
        string osName = ShmFiles.ToOsName(name);
        if (!File.Exists(ShmFiles.SegmentPath(osName)))
        {
            return null;
        }

        return Read(osName, ProcessTable.Scan());
    }

    /// <summary>Every segment read in full, and every semaphore, for the doctor. <paramref name="names"/> narrows it to those objects.</summary>
    internal (IReadOnlyList<InspectReport> Segments, IReadOnlyList<ListEntry> Semaphores, IReadOnlyList<int> Unreadable) ReadAll(IReadOnlyCollection<string>? names = null)
    {
        ProcessTable processes = ProcessTable.Scan();
        HashSet<string>? wanted = names is { Count: > 0 } ? names.Select(ShmFiles.ToOsName).ToHashSet(StringComparer.Ordinal) : null;
        var segments = _platform.EnumerateSegments(ShmName.OsPrefix)
            .Where(n => wanted is null || wanted.Contains(n))
            .Order(StringComparer.Ordinal)
            .Select(n => Read(n, processes))
            .ToList();
        var semaphores = Semaphores(processes)
            .Where(s => wanted is null || wanted.Contains(ShmFiles.ToOsName(s.Segment ?? s.Name)))
            .ToList();
        return (segments, semaphores, processes.UnreadableProcesses);
    }

    /// <summary>Reads one segment: header, openers and, for a queue or a pipe, its state.</summary>
    private InspectReport Read(string osName, ProcessTable processes)
    {
        string path = ShmFiles.SegmentPath(osName);
        string name = ShmFiles.ToName(osName);
        IReadOnlyList<int> openBy = processes.OpenersOf(path);
        double age = ShmFiles.AgeSeconds(path);
        long size = File.Exists(path) ? new FileInfo(path).Length : 0;

        using ReadOnlySegment? segment = ReadOnlySegment.Open(path, out SegmentHeaderDescriptor.Fields? header, out string? problem);
        problem ??= segment is null ? "it vanished while it was read" : null;
        ObjectKind kind = header is { } known ? KindOf(known.Kind, name) : ObjectKind.Unknown;
        ProcessRef? creator = header is { CreatorPid: > 0 } h ? Liveness.Of(_platform, h.Creator) : null;

        QueueState? queue = null;
        PipeState? pipe = null;
        SideSegmentState? side = null;
        if (segment is not null)
        {
            switch (kind)
            {
                case ObjectKind.Queue:
                    queue = QueueReader.Read(segment, _platform, out problem);
                    break;
                case ObjectKind.Pipe or ObjectKind.PoolChannel:
                    pipe = PipeReader.Read(segment, _platform, out problem);
                    break;
                case ObjectKind.SideSegment:
                    side = SideSegmentReader.Read(segment, _platform, out problem);
                    break;
                case ObjectKind.Unknown:
                    problem = $"its kind, {(uint)segment.Header.Kind}, is not one this build of shmipc knows (a later ShmIpc's?)";
                    break;
            }
        }

        if (header is { Magic: 0 } unpublished)
        {
            problem = Liveness.Of(_platform, unpublished.Creator).Alive
                ? $"its creator, pid {unpublished.CreatorPid}, is still making it (the header is not published yet)"
                : $"its creator, pid {unpublished.CreatorPid}, died before it published the header";
        }

        var entry = new ListEntry(name, path, kind, size, creator, openBy, age, Segment: null, problem);
        uint semaphoreCount = Math.Min(header?.SemaphoreCount ?? 0, SegmentHeaderDescriptor.MaxSemaphores);
        var missing = Enumerable.Range(0, (int)semaphoreCount)
            .Select(i => ShmName.SemaphoreOsName(osName, i))
            .Where(s => !File.Exists(ShmFiles.SemaphorePath(s)))
            .ToList();
        var flags = new List<string>();
        if (header is { } fields)
        {
            if ((fields.Flags & SegmentHeaderDescriptor.FlagGroupAccess) != 0)
            {
                flags.Add("group-access");
            }

            if ((fields.Flags & SegmentHeaderDescriptor.FlagKeep) != 0)
            {
                flags.Add("keep");
            }
        }

        bool published = header is not { Magic: 0 };
        return new InspectReport(entry, published, flags, (int)semaphoreCount, missing, queue, pipe, problem, side);
    }

    private IEnumerable<ListEntry> Semaphores(ProcessTable processes)
    {
        foreach (string osName in _platform.EnumerateSemaphores(ShmName.OsPrefix).Order(StringComparer.Ordinal))
        {
            string path = ShmFiles.SemaphorePath(osName);
            string? segment = ShmFiles.SegmentOfSemaphore(osName);
            string? problem = segment is null ? "its name is not <segment>.s<index>"
                : !File.Exists(ShmFiles.SegmentPath(segment)) ? "its segment does not exist"
                : null;
            long size = File.Exists(path) ? new FileInfo(path).Length : 0;
            yield return new ListEntry(ShmFiles.ToName(osName), path, ObjectKind.Semaphore, size, Creator: null,
                processes.OpenersOf(path), ShmFiles.AgeSeconds(path), segment is null ? null : ShmFiles.ToName(segment), problem);
        }
    }

    internal static ObjectKind KindOf(SegmentKind kind, string name) => kind switch
    {
        SegmentKind.Queue => ObjectKind.Queue,
        SegmentKind.Pipe => name.StartsWith(ShmFiles.PoolChannelPrefix, StringComparison.Ordinal) ? ObjectKind.PoolChannel : ObjectKind.Pipe,
        SegmentKind.Raw => ObjectKind.Raw,
        SegmentKind.SideMessage => ObjectKind.SideSegment,
        _ => ObjectKind.Unknown,
    };
}
