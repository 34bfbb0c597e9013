using System.IO.MemoryMappedFiles;
using ShmIpc.Layout;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// A segment file opened for reading only: its header copied out once and validated by
/// <see cref="SegmentHeaderDescriptor"/>, and, when it is valid, a read-only view of the whole file through
/// which the kind's control block and data region are read with the descriptors' acquire loads.
/// </summary>
/// <remarks>
/// Nothing here can change a byte: the file is opened O_RDONLY and the view is PROT_READ (a stray store would
/// fault, not corrupt). No use lock is taken, so the tool does not count as a user of the segment and cannot
/// make anyone's Open fail. Another process may write anything at any time: every length and position read
/// through the view is checked by the caller before it is used as an offset.
/// </remarks>
internal sealed unsafe class ReadOnlySegment : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    private ReadOnlySegment(MemoryMappedFile file, MemoryMappedViewAccessor view, SegmentHeaderDescriptor.Fields header)
    {
        _file = file;
        _view = view;
        Header = header;
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + view.PointerOffset;
    }

    public SegmentHeaderDescriptor.Fields Header { get; }

    /// <summary>The control block: <see cref="SegmentHeaderDescriptor.Fields.ControlSize"/> bytes, read-only.</summary>
    public byte* Control => _base + Header.ControlOffset;

    /// <summary>The data region: <see cref="SegmentHeaderDescriptor.Fields.DataSize"/> bytes, read-only.</summary>
    public byte* Data => _base + Header.DataOffset;

    /// <summary>
    /// Reads and validates the header of <paramref name="path"/> (with a private copy, as the sweep does) and
    /// maps the file read-only when it is valid. Returns null with the reason when it is not, and null without
    /// reason when the file is gone. <paramref name="header"/> is set whenever the header is ShmIpc's and its
    /// checksum matches, even if the segment is not usable (a creator that died before publishing it).
    /// </summary>
    public static ReadOnlySegment? Open(string path, out SegmentHeaderDescriptor.Fields? header, out string? problem)
    {
        header = null;
        problem = null;
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            problem = "this user may not read it";
            return null;
        }

        try
        {
            byte[] raw = new byte[SegmentHeaderDescriptor.HeaderSize];
            long length = stream.Length;
            if (length < raw.Length || RandomAccess.Read(stream.SafeFileHandle, raw, 0) != raw.Length)
            {
                problem = $"the file is {length} bytes, shorter than the {SegmentHeaderDescriptor.HeaderSize}-byte header (its creator is mid-way, or died there)";
                stream.Dispose();
                return null;
            }

            SegmentHeaderDescriptor.Fields fields;
            fixed (byte* copy = raw)
            {
                fields = SegmentHeaderDescriptor.Read(copy);
            }

            // The header names its creator truly when it is ours and whole: published, or not yet (magic 0: the
            // creator is mid-way or died there) with a matching checksum. That is the sweep's test too.
            bool ours = fields.Magic is 0 or SegmentHeaderDescriptor.MagicValue;
            header = ours && fields.Checksum == SegmentHeaderDescriptor.Checksum(raw) ? fields : null;
            // Validated against its own kind: which kinds the tool can read further is the caller's business.
            if (SegmentHeaderDescriptor.Validate(fields, raw, length, fields.Kind) is (_, string detail))
            {
                problem = detail;
                stream.Dispose();
                return null;
            }

            var file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            try
            {
                return new ReadOnlySegment(file, file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read), fields);
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_base is null)
        {
            return;
        }

        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
