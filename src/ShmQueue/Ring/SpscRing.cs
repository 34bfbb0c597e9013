using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ShmIpc.Layout;

namespace ShmIpc.Ring;

/// <summary>
/// One direction of a pipe: a single-producer/single-consumer ring of variable-length records in
/// mapped memory (layout: <see cref="SpscRingDescriptor"/>). One process is the producer, one the
/// consumer; an instance is used in one role only, by one thread at a time (the connection enforces it).
/// </summary>
/// <remarks>
/// Design:
/// - Words: Tail is written only by the producer, Head only by the consumer, both with plain release
///   stores (no atomic read-modify-write anywhere). They sit 128 bytes apart so the two sides never
///   write the same cache line (nor its adjacent-line prefetch partner).
/// - Publication: the producer writes the record header and payload with plain stores, then release-
///   stores Tail. The consumer acquire-loads Tail; every byte below it is a complete record. So Tail
///   is the commit point and a record is never seen half-written.
/// - Release: the consumer copies a record out, then release-stores Head past it. The producer
///   acquire-loads Head before reusing those bytes, so it never overwrites a record still being read.
/// - Empty: Head == Tail. Full: the record (plus padding before it at the wrap) does not fit in
///   Capacity - (Tail - Head). Invariant: 0 &lt;= Tail - Head &lt;= Capacity, both multiples of 8.
/// - Cached copies: the producer keeps the last Head it read (_headCache) and re-reads Head only when
///   that copy says "full"; the consumer keeps the last Tail (_tailCache) and re-reads it only when its
///   copy says "empty". Each side's own position is a process-local copy of the word it alone writes.
/// - Wrap: a record never straddles the end. If it does not fit before the end, a padding record fills
///   the rest and the message goes at index 0; both are published by the same Tail store.
/// - Distrust: the peer is another process that may be buggy or hostile. Every Head, Tail, length and
///   type read from shared memory is checked before use (read once into a local, then bounds-checked);
///   a bad value throws <see cref="ShmCorruptionException"/> and nothing outside the ring is touched.
/// - Crashes: a producer that dies before its Tail store leaves nothing visible (the half-written bytes
///   lie beyond Tail); one that dies after it left a complete record, which is delivered. A consumer that
///   dies leaves Head where it was; nothing to repair, the pipe is over (the connection reports it).
/// - Shared ends: when several processes send on one end, they take turns as "the producer" under the ring's
///   SendLock (several receivers under ReceiveLock; see SpscRingDescriptor and OwnerWordLock). The process-local
///   copies are then stale whenever another process had the lock: the connection calls
///   <see cref="SyncProducer"/> (or <see cref="SyncConsumer"/>) right after each take, which reloads and checks
///   the shared words, and publishes before each let-go, so the single-writer rules above hold for the holder.
///   A producer killed holding the lock has published nothing of a half-written record (it lies beyond Tail),
///   so the next holder simply writes over it; a killed consumer had not released Head past a record it was
///   reading, so that record goes to the next receiver (at-least-once for the record in hand, never a torn one).
///   The wait conditions of a shared end use <see cref="HasSpaceForShared"/> and <see cref="HasDataShared"/>,
///   which read only shared words (no lock held while waiting).
/// </remarks>
internal sealed unsafe partial class SpscRing
{
    private readonly byte* _tailWord;
    private readonly byte* _headWord;
    private readonly byte* _data;
    private readonly long _capacity;
    private readonly long _mask;
    private readonly int _maxMessageLength;
    private readonly string _name;

    // Producer side (process-local).
    private long _tail;

    /// <summary>Producer: the last value stored to the shared Tail (<see cref="_tail"/> runs ahead of it within a batch).</summary>
    private long _publishedTail;
    private long _headCache;

    // Consumer side (process-local).
    private long _head;

    /// <summary>Consumer: the last value stored to the shared Head (<see cref="_head"/> runs ahead of it within a batch).</summary>
    private long _publishedHead;
    private long _tailCache;
    private byte* _peekedPayload;
    private int _peekedLength;
    private bool _peekedIsSide;
    private long _peekedNext;

    /// <param name="control">The ring's control lines (<see cref="SpscRingDescriptor.ControlSize"/> bytes).</param>
    /// <param name="data">The ring's <paramref name="capacity"/> bytes.</param>
    /// <param name="capacity">A validated power of two.</param>
    /// <param name="maxMessageLength">The longest payload the consumer accepts (from the validated control block).</param>
    /// <param name="name">The pipe's name, for error messages.</param>
    public SpscRing(byte* control, byte* data, int capacity, int maxMessageLength, string name)
    {
        _tailWord = control + SpscRingDescriptor.TailOffset;
        _headWord = control + SpscRingDescriptor.HeadOffset;
        _data = data;
        _capacity = capacity;
        _mask = capacity - 1;
        _maxMessageLength = maxMessageLength;
        _name = name;

        // Attaching (create, connect, handover): the words were validated by PipeDescriptor; each side
        // resumes from the shared value of its own word and its first look at the other side's.
        _tail = MappedAtomics.ReadInt64Acquire(_tailWord);
        _publishedTail = _tail;
        _head = MappedAtomics.ReadInt64Acquire(_headWord);
        _headCache = _head;
        _publishedHead = _head;
        _tailCache = _tail;
    }

    public int Capacity => (int)_capacity;

    public int MaxMessageLength => _maxMessageLength;

    /// <summary>The ring's SendLock word (used only while its producing end is shared).</summary>
    public byte* SendLockWord => _tailWord + SpscRingDescriptor.SendLockOffset;

    /// <summary>The ring's ReceiveLock word (used only while its consuming end is shared).</summary>
    public byte* ReceiveLockWord => _tailWord + SpscRingDescriptor.ReceiveLockOffset;

    // ----------------------------------------------------------- shared ends

    /// <summary>
    /// Producer of a shared end, just after taking SendLock: resumes from the shared Tail (another process may have
    /// advanced it) and the current Head. Nothing may be unpublished (the last holder published before letting go).
    /// </summary>
    /// <exception cref="ShmCorruptionException">Tail and Head are not 8-aligned positions at most Capacity apart.</exception>
    public void SyncProducer()
    {
        Debug.Assert(_tail == _publishedTail, "published before the lock was let go");

        // Acquire pairs with the previous holder's release of Tail (and the lock's CAS orders it anyway).
        long tail = MappedAtomics.ReadInt64Acquire(_tailWord);
        long head = MappedAtomics.ReadInt64Acquire(_headWord);
        CheckPositions(tail, head);
        _tail = tail;
        _publishedTail = tail;
        _headCache = head;
    }

    /// <summary>Consumer of a shared end, just after taking ReceiveLock: resumes from the shared Head and the current Tail.</summary>
    /// <exception cref="ShmCorruptionException">Tail and Head are not 8-aligned positions at most Capacity apart.</exception>
    public void SyncConsumer()
    {
        Debug.Assert(_head == _publishedHead, "released before the lock was let go");
        long head = MappedAtomics.ReadInt64Acquire(_headWord);
        long tail = MappedAtomics.ReadInt64Acquire(_tailWord);
        CheckPositions(tail, head);
        _head = head;
        _publishedHead = head;
        _tailCache = tail;
    }

    /// <summary>
    /// Wait condition of a shared producer (no lock held): would a <paramref name="length"/>-byte record fit after the
    /// shared Tail? Inconsistent words answer true, so that the waiter takes the lock and SyncProducer reports them.
    /// </summary>
    public bool HasSpaceForShared(int length)
    {
        long tail = MappedAtomics.ReadInt64Acquire(_tailWord);
        long head = MappedAtomics.ReadInt64Acquire(_headWord);
        long recordSize = SpscRingDescriptor.RecordSize(length);
        long toEnd = _capacity - (tail & _mask);
        long required = recordSize <= toEnd ? recordSize : toEnd + recordSize;
        long used = tail - head;
        return used < 0 || used > _capacity || tail + required - head <= _capacity;
    }

    /// <summary>Wait condition of a shared consumer (no lock held): is a record published beyond the shared Head?</summary>
    public bool HasDataShared() => MappedAtomics.ReadInt64Acquire(_tailWord) != MappedAtomics.ReadInt64Acquire(_headWord);

    private void CheckPositions(long tail, long head)
    {
        long used = tail - head;
        if (used < 0 || used > _capacity || ((head | tail) & (SpscRingDescriptor.RecordAlignment - 1)) != 0)
        {
            ThrowCorrupted(tail, $"head {head} and tail {tail} are not 8-aligned positions at most {_capacity} apart");
        }
    }

    // ---------------------------------------------------------------- producer

    /// <summary>
    /// Writes one record and publishes it (with every record written before it and not yet published), or
    /// returns false when it does not fit now. With <paramref name="publish"/> false the record is written
    /// but stays invisible to the consumer until <see cref="Publish"/> (or a publishing write): a batch
    /// costs the consumer's core one transfer of the Tail line instead of one per message. The caller has
    /// checked <c>message.Length &lt;= MaxMessageLength</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWrite(ReadOnlySpan<byte> message, bool publish = true, int type = SpscRingDescriptor.MessageType)
    {
        Debug.Assert(message.Length <= (type == SpscRingDescriptor.SideType ? SideSegmentDescriptor.MaxRecordLength : _maxMessageLength));
        long recordSize = SpscRingDescriptor.RecordSize(message.Length);
        long tail = _tail;
        long index = tail & _mask;
        long toEnd = _capacity - index;
        long required = recordSize <= toEnd ? recordSize : toEnd + recordSize;
        if (tail + required - _headCache > _capacity && !RefreshHead(tail, required))
        {
            return false;
        }

        byte* record = _data + index;
        if (recordSize > toEnd)
        {
            WriteHeader(record, (int)(toEnd - SpscRingDescriptor.RecordHeaderLength), SpscRingDescriptor.PaddingType);
            record = _data;
        }

        WriteHeader(record, message.Length, type);
        PayloadCopy.Copy(record + SpscRingDescriptor.RecordHeaderLength, message);
        _tail = tail + required;
        if (publish)
        {
            Publish();
        }

        AssertInvariants();
        return true;
    }

    // ------------------------------------------------------------------ loans

    /// <summary>Producer: bytes of padding in front of the record lent by <see cref="TryBeginLoan"/> (0 or up to the end).</summary>
    private long _loanPadding;

    /// <summary>
    /// Reserves room for a record of <paramref name="maxLength"/> payload bytes after Tail and lends its payload bytes
    /// (<paramref name="payload"/>), or returns false when it does not fit now. Nothing is written: the bytes lie
    /// beyond Tail, invisible, until <see cref="CommitLoan"/> (abandoning needs no step at all). The caller holds the
    /// producer's turn until then and has checked <c>maxLength &lt;= MaxMessageLength</c>.
    /// </summary>
    public bool TryBeginLoan(int maxLength, out byte* payload)
    {
        long recordSize = SpscRingDescriptor.RecordSize(maxLength);
        long tail = _tail;
        long index = tail & _mask;
        long toEnd = _capacity - index;
        long required = recordSize <= toEnd ? recordSize : toEnd + recordSize;
        if (tail + required - _headCache > _capacity && !RefreshHead(tail, required))
        {
            payload = null;
            return false;
        }

        _loanPadding = recordSize <= toEnd ? 0 : toEnd;
        payload = (_loanPadding == 0 ? _data + index : _data) + SpscRingDescriptor.RecordHeaderLength;
        return true;
    }

    /// <summary>
    /// Writes the lent record's header for <paramref name="length"/> bytes (at most the loan's), with the padding
    /// before it if the loan needed one, and publishes it like <see cref="TryWrite"/>. A shorter length simply makes
    /// a shorter record: Tail, the commit point, moves past only what the record uses.
    /// </summary>
    public void CommitLoan(int length)
    {
        long tail = _tail;
        byte* record = _data + (tail & _mask);
        if (_loanPadding != 0)
        {
            WriteHeader(record, (int)(_loanPadding - SpscRingDescriptor.RecordHeaderLength), SpscRingDescriptor.PaddingType);
            record = _data;
        }

        WriteHeader(record, length, SpscRingDescriptor.MessageType);
        _tail = tail + _loanPadding + SpscRingDescriptor.RecordSize(length);
        Publish();
        AssertInvariants();
    }

    // ------------------------------------------------------------ staging (deferred sends)

    /// <summary>Records staged by <see cref="TryStage"/>, laid out as in the ring, not yet copied into it (process-local).</summary>
    private byte[]? _staging;
    private int _staged;

    /// <summary>How many bytes of records <see cref="TryStage"/> keeps before they must go into the ring.</summary>
    public int StagingLimit => (int)Math.Min(16 << 10, _capacity / 8);

    /// <summary>Records staged and not yet in the ring.</summary>
    public bool HasStaged => _staged != 0;

    /// <summary>Length of the first staged message (valid while <see cref="HasStaged"/>).</summary>
    public int FirstStagedLength => BitConverter.ToInt32(_staging!, SpscRingDescriptor.LengthOffset);

    /// <summary>
    /// Appends a record to the private staging buffer; false when it does not fit there (the caller moves the staged
    /// records into the ring first, or writes a message longer than the buffer directly). Why: the copy of a record
    /// into the ring writes lines the consumer has just read, each write waiting for that core to let go of the line;
    /// one bulk copy per batch lets the processor overlap those transfers, a copy per 72-byte record does not (two
    /// thirds of a 64 B stream's sender time went there).
    /// </summary>
    public bool TryStage(ReadOnlySpan<byte> message)
    {
        int size = (int)SpscRingDescriptor.RecordSize(message.Length);
        if (_staged + size > StagingLimit)
        {
            return false;
        }

        _staging ??= new byte[StagingLimit];
        fixed (byte* record = &_staging[_staged])
        {
            WriteHeader(record, message.Length, SpscRingDescriptor.MessageType);
            message.CopyTo(new Span<byte>(record + SpscRingDescriptor.RecordHeaderLength, message.Length));
        }

        _staged += size;
        return true;
    }

    /// <summary>
    /// Moves staged records into the ring, in order, as many as fit now, each run of whole records with one copy (a
    /// padding record where the next one would cross the ring's end). Unpublished: see <see cref="Publish"/>. True
    /// when none is left staged.
    /// </summary>
    public bool TryUnstage()
    {
        int offset = 0;
        try
        {
            while (offset < _staged)
            {
                long tail = _tail;
                long index = tail & _mask;
                long toEnd = _capacity - index;
                int run = 0;
                int left = _staged - offset;
                if (left <= toEnd && tail + left - _headCache <= _capacity)
                {
                    run = left; // the common case: all of it fits before the end, in the room known to be free
                }

                while (run < left)
                {
                    int size = (int)SpscRingDescriptor.RecordSize(BitConverter.ToInt32(_staging!, offset + run + SpscRingDescriptor.LengthOffset));
                    if (run + size > toEnd || tail + run + size - _headCache > _capacity)
                    {
                        break;
                    }

                    run += size;
                }

                if (run == 0)
                {
                    long first = SpscRingDescriptor.RecordSize(BitConverter.ToInt32(_staging!, offset + SpscRingDescriptor.LengthOffset));
                    long required = first <= toEnd ? first : toEnd + first;
                    if (!RefreshHead(tail, required))
                    {
                        return false; // no room now
                    }

                    if (first > toEnd)
                    {
                        WriteHeader(_data + index, (int)(toEnd - SpscRingDescriptor.RecordHeaderLength), SpscRingDescriptor.PaddingType);
                        _tail = tail + toEnd;
                    }

                    continue;
                }

                new ReadOnlySpan<byte>(_staging, offset, run).CopyTo(new Span<byte>(_data + index, run));
                _tail = tail + run;
                offset += run;
            }

            return true;
        }
        finally
        {
            if (offset > 0)
            {
                Array.Copy(_staging!, offset, _staging!, 0, _staged - offset);
                _staged -= offset;
            }

            AssertInvariants();
        }
    }

    /// <summary>Records written (by <see cref="TryWrite"/> with publish: false, or unstaged) that the consumer cannot see yet.</summary>
    public bool HasUnpublished => _tail != _publishedTail;

    /// <summary>Bytes of records written and not yet published.</summary>
    public long UnpublishedBytes => _tail - _publishedTail;

    /// <summary>Makes every record written so far visible to the consumer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Publish()
    {
        // Release: the header and payload stores of every record below _tail are visible to a consumer
        // whose acquire load of Tail (RefreshTail) reads this value.
        _publishedTail = _tail;
        MappedAtomics.WriteInt64Release(_tailWord, _tail);
    }

    /// <summary>True when a <paramref name="length"/>-byte message fits now (re-reads Head if needed).</summary>
    public bool HasSpaceFor(int length)
    {
        long recordSize = SpscRingDescriptor.RecordSize(length);
        long tail = _tail;
        long toEnd = _capacity - (tail & _mask);
        long required = recordSize <= toEnd ? recordSize : toEnd + recordSize;
        return tail + required - _headCache <= _capacity || RefreshHead(tail, required);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool RefreshHead(long tail, long required)
    {
        // Acquire pairs with the consumer's release of Head in Commit: its reads of the bytes below
        // Head are finished, so we may overwrite them.
        long head = MappedAtomics.ReadInt64Acquire(_headWord);
        long used = tail - head;
        if (used < 0 || used > _capacity || (head & (SpscRingDescriptor.RecordAlignment - 1)) != 0)
        {
            ThrowBadHead(head, tail);
        }

        _headCache = head;
        return tail + required - head <= _capacity;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteHeader(byte* record, int length, int type)
    {
        // Plain stores: published by the release of Tail. The layout is little-endian and so are the
        // machines this runs on (checked once by ShmPipe).
        *(int*)(record + SpscRingDescriptor.LengthOffset) = length;
        *(int*)(record + SpscRingDescriptor.TypeOffset) = type;
    }

    // ---------------------------------------------------------------- consumer

    /// <summary>True when a record is waiting (re-reads Tail if the cached copy says empty).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool HasData() => _head != _tailCache || RefreshTail(_head);

    /// <summary>
    /// Finds the next message without consuming it: afterwards <see cref="PeekedPayload"/> is its bytes
    /// until <see cref="Commit()"/>. False when the ring is empty.
    /// </summary>
    /// <exception cref="ShmCorruptionException">A record header or Tail is out of bounds.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPeek()
    {
        long head = _head;
        if (head == _tailCache && !RefreshTail(head))
        {
            return false;
        }

        ReadRecord(head);
        return true;
    }

    /// <summary>The payload found by the last successful <see cref="TryPeek"/>.</summary>
    public ReadOnlySpan<byte> PeekedPayload => new(_peekedPayload, _peekedLength);

    public int PeekedLength => _peekedLength;

    /// <summary>True when the peeked record is a side segment's reference (<see cref="SpscRingDescriptor.SideType"/>), not the message itself.</summary>
    public bool PeekedIsSide => _peekedIsSide;

    /// <summary>Consumes the peeked record (and any padding before it) and releases its bytes to the producer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit() => Commit(publish: true);

    /// <summary>
    /// Consumes the peeked record; with <paramref name="publish"/> false its bytes stay the consumer's (the producer
    /// cannot reuse them, so a span over them stays valid) until <see cref="PublishHead"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit(bool publish)
    {
        _head = _peekedNext;
        if (publish)
        {
            PublishHead();
        }

        AssertInvariants();
    }

    /// <summary>Gives every consumed record's bytes back to the producer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PublishHead()
    {
        // Release: our reads of the records are done before the producer, whose acquire load of Head
        // (RefreshHead) reads this value, reuses their bytes.
        _publishedHead = _head;
        MappedAtomics.WriteInt64Release(_headWord, _head);
    }

    /// <summary>Bytes consumed (by <see cref="Commit(bool)"/> with publish: false) and not yet given back to the producer.</summary>
    public long UnreleasedBytes => _head - _publishedHead;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool RefreshTail(long head)
    {
        // Acquire pairs with the producer's release of Tail in TryWrite: the records below it are complete.
        long tail = MappedAtomics.ReadInt64Acquire(_tailWord);
        if (tail == head)
        {
            return false;
        }

        long available = tail - head;
        if (available < 0 || available > _capacity || (tail & (SpscRingDescriptor.RecordAlignment - 1)) != 0)
        {
            ThrowBadTail(tail, head);
        }

        _tailCache = tail;
        return true;
    }

    private void ReadRecord(long head)
    {
        long available = _tailCache - head;
        long index = head & _mask;
        byte* record = _data + index;

        // Each shared field is read once into a local; only the local is checked and used. The checks stay (the peer
        // may write anything there); their messages are built in the throw helpers, off this path.
        int type = ReadInt32Once(record + SpscRingDescriptor.TypeOffset);
        if (type == SpscRingDescriptor.PaddingType)
        {
            long toEnd = _capacity - index;
            int padding = ReadInt32Once(record + SpscRingDescriptor.LengthOffset);
            if (padding != toEnd - SpscRingDescriptor.RecordHeaderLength || available <= toEnd)
            {
                ThrowBadPadding(head, padding, index, toEnd, available);
            }

            head += toEnd;
            available -= toEnd;
            index = 0;
            record = _data;
            type = ReadInt32Once(record + SpscRingDescriptor.TypeOffset);
        }

        int length = ReadInt32Once(record + SpscRingDescriptor.LengthOffset);
        int maxLength = _maxMessageLength;
        if (type != SpscRingDescriptor.MessageType)
        {
            if (type != SpscRingDescriptor.SideType)
            {
                ThrowBadType(head, type);
            }

            maxLength = SideSegmentDescriptor.MaxRecordLength;
        }

        if ((uint)length > (uint)maxLength)
        {
            ThrowBadLength(head, length, maxLength);
        }

        long recordSize = SpscRingDescriptor.RecordSize(length);
        if (recordSize > available || recordSize > _capacity - index)
        {
            ThrowRecordOverrun(head, recordSize, index, available);
        }

        _peekedPayload = record + SpscRingDescriptor.RecordHeaderLength;
        _peekedLength = length;
        _peekedIsSide = type == SpscRingDescriptor.SideType;
        _peekedNext = head + recordSize;
    }

    // An acquire load so the compiler can neither re-read the word after the check nor merge reads;
    // on x64 it is a plain load, on arm64 an ldar.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ReadInt32Once(byte* address) => MappedAtomics.ReadInt32Acquire(address);

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert((_tail & 7) == 0 && (_head & 7) == 0, "positions are 8-aligned");
        Debug.Assert(_tail - _headCache is >= 0 && _tail - _headCache <= int.MaxValue, "producer: tail within capacity of cached head");
        Debug.Assert(_tailCache - _head >= 0, "consumer: cached tail not behind head");
    }
}
