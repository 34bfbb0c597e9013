using System.Diagnostics;
using ShmIpc.Diagnostics;
using ShmIpc.Protocol;

namespace ShmIpc.Hosting;

/// <summary>
/// A pool worker: runs the initializer, says Ready, then runs chunks until Stop or until the parent is
/// gone. An exception thrown by the user's function fails that item only; the worker goes on.
/// </summary>
internal sealed class WorkerLoop
{
    private readonly ChildChannel _channel;
    private readonly MessageWriter _writer = new();
    private readonly Dictionary<int, ResolvedTarget> _functions = new();
    private readonly Dictionary<int, RawInvoker> _rawInvokers = new();
    private readonly List<RawItemError> _rawErrors = new();
    private IShmObjectSerializer? _serializer;
    private readonly Dictionary<int, Exception> _unresolvable = new();
    private readonly InPlaceRunner _inPlace = new();

    public WorkerLoop(ChildChannel channel)
    {
        _channel = channel;
    }

    /// <summary>Whether this worker has let its deferred instruments be created (after its first result).</summary>
    private bool _metricsStarted;

    /// <summary>The caller's span of the next chunk, from a Trace message; null when none came.</summary>
    private string? _traceParent;

    public int Run(ref MessageReader init)
    {
        try
        {
            return RunCore(ref init);
        }
        finally
        {
            MapTimeline.Flush(); // when on: the marks of every Map this worker ran, written once it ends
        }
    }

    private int RunCore(ref MessageReader init)
    {
        IShmObjectSerializer serializer;
        try
        {
            serializer = SerializerFactory.Create(init.ReadRequiredString());
            _serializer = serializer;
            byte initializer = init.ReadByte();
            if (initializer != 0)
            {
                ResolvedTarget target = init.ReadTarget().Resolve();
                object? argument = initializer == 2 ? serializer.Deserialize(target.ArgumentType, init.ReadBytes()) : null;
                target.Invoke(argument);
            }
        }
#pragma warning disable CA1031 // Reported to the parent, which fails the pool's tasks with it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _writer.Reset(MessageKind.InitFailed).WriteError(RemoteError.From(e));
            TrySend();
            return ChildHost.TargetFailedExitCode;
        }

        StartTimeline.Mark("initialized");
        _writer.Reset(MessageKind.Ready).WriteInt32(Environment.ProcessId);
        if (!TrySend())
        {
            return 0;
        }

        while (true)
        {
            // Into the channel's buffer, valid until the next receive: nothing allocated per task. A Chunk is
            // copied out first, as its items go to the serializer, which may keep what it was given.
            ReadOnlyMemory<byte> message;
            try
            {
                if (!_metricsStarted)
                {
                    message = _channel.ReceiveBorrowed();
                }
                else
                {
                    // From the second task on (the generic in-place receive is JIT-compiled at its first use: not on the way
                    // to the first result): a RawChunk runs where it lies, its results written where they are sent.
                    if (!_channel.ReceiveInPlace(s_onMessage, this))
                    {
                        continue;
                    }

                    if (_ranInPlace)
                    {
                        MapTimeline.Mark("w-sent", 0);
                        continue;
                    }

                    message = _received;
                }
            }
            catch (ShmPeerClosedException)
            {
                return 0;
            }

            if (!message.IsEmpty && message.Span[0] == (byte)MessageKind.Chunk)
            {
                message = message.ToArray();
            }

            var reader = new MessageReader(message);
            MessageKind kind = reader.ReadKind();
            switch (kind)
            {
                case MessageKind.Define:
                    StartTimeline.Mark("define");
                    Define(ref reader);
                    StartTimeline.Mark("defined");
                    break;
                case MessageKind.Trace:
                    _traceParent = reader.ReadRequiredString();
                    break;
                case MessageKind.Chunk:
                case MessageKind.RawChunk:
                case MessageKind.InPlaceChunk:
                    // A span in the worker only when the caller sent its trace and someone here listens (an initializer
                    // may set up OpenTelemetry): a child of the caller's span, in the caller's trace.
                    using (IDisposable? activity = _traceParent is null ? null : StartTaskActivity(_traceParent))
                    {
                        _traceParent = null;
                        if (kind == MessageKind.Chunk)
                        {
                            RunChunk(ref reader, serializer);
                        }
                        else if (kind == MessageKind.RawChunk)
                        {
                            MapTimeline.Mark("w-received", message.Length);
                            RunRawChunk(ref reader);
                        }
                        else
                        {
                            _inPlace.Run(ref reader, _writer, _functions, _unresolvable);
                        }
                    }

                    if (!TrySend())
                    {
                        return 0;
                    }

                    MapTimeline.Mark("w-sent", _writer.Length);
                    if (!_metricsStarted)
                    {
                        StartTimeline.Mark("first-result-sent");
                        StartTimeline.Flush();
                        // The first result is out: now the instruments this child deferred (ChildHost.Main) may be made.
                        _metricsStarted = true;
                        ShmMetrics.CreateInBackground();
                        ParentWatchdog.StartFallbackPoll();
                    }

                    break;
                case MessageKind.Stop:
                    return 0;
                default:
                    throw new InvalidDataException("A worker received a message it does not know.");
            }
        }
    }

    /// <summary>
    /// The worker's span of a task whose caller sent its trace, when someone here listens. A method of its own so that the
    /// loop's code does not name System.Diagnostics types: the runtime would load their assembly on the way to Ready.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static IDisposable? StartTaskActivity(string traceParent) =>
        ShmTelemetry.ActivitySource.HasListeners()
            ? ShmTelemetry.ActivitySource.StartActivity(ShmPool.TaskActivityName, ActivityKind.Consumer, traceParent)
            : null;

    private void Define(ref MessageReader reader)
    {
        int id = reader.ReadInt32();
        TargetMethod target = reader.ReadTarget();
        try
        {
            ResolvedTarget resolved = target.Resolve();
            _functions[id] = resolved;
            if (RawInvoker.For(resolved.Method, resolved.Instance, _serializer!) is RawInvoker raw)
            {
                _rawInvokers[id] = raw;
            }
        }
#pragma warning disable CA1031 // Every task of this function will fail with it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _unresolvable[id] = e;
        }
    }

    private void RunChunk(ref MessageReader reader, IShmObjectSerializer serializer)
    {
        long chunkId = reader.ReadInt64();
        int functionId = reader.ReadInt32();
        int count = reader.ReadInt32();
        _writer.Reset(MessageKind.Results).WriteInt64(chunkId);
        _writer.WriteInt32(count);
        _functions.TryGetValue(functionId, out ResolvedTarget? function);
        _rawInvokers.TryGetValue(functionId, out RawInvoker? raw);
        for (int i = 0; i < count; i++)
        {
            ReadOnlyMemory<byte> argumentBytes = reader.ReadBytes();
            int mark = _writer.Length;
            SharedStateFormatters.BeginItem();
            try
            {
                if (raw is not null)
                {
                    raw.Run(argumentBytes.Span, _writer);
                    continue;
                }

                if (function is null)
                {
                    throw _unresolvable.GetValueOrDefault(functionId) ?? new InvalidOperationException($"Function {functionId} was never defined.");
                }

                object? argument = serializer.Deserialize(function.ArgumentType, argumentBytes);
                object? result = function.Invoke(argument);
                _writer.WriteByte(0);
                _writer.WriteLengthPrefixed((serializer, function.Method.ReturnType, result),
                    static (s, w) => s.serializer.Serialize(s.ReturnType, s.result, w));
            }
#pragma warning disable CA1031 // The user's exception fails this item only.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _writer.Truncate(mark);
                _writer.WriteByte(1);
                _writer.WriteError(RemoteError.From(e));
            }
            finally
            {
                SharedStateFormatters.EndItem(); // the shared objects its argument opened: see SharedStateFormatters.Items.cs
            }
        }
    }

    /// <summary>A block of unmanaged arguments: the results go back as one block too (see <see cref="MessageKind.RawChunk"/>).</summary>
    private void RunRawChunk(ref MessageReader reader)
    {
        long chunkId = reader.ReadInt64();
        int functionId = reader.ReadInt32();
        int count = reader.ReadInt32();
        ReadOnlyMemory<byte> arguments = reader.ReadBytes();
        _writer.Reset(MessageKind.RawResults).WriteInt64(chunkId);
        _writer.WriteInt32(count);
        _rawErrors.Clear();
        if (_rawInvokers.TryGetValue(functionId, out RawInvoker? raw))
        {
            MapTimeline.Mark("w-run", chunkId);
            raw.RunBlock(arguments.Span, count, _writer, _rawErrors);
            MapTimeline.Mark("w-ran", chunkId);
        }
        else
        {
            Exception why = _unresolvable.GetValueOrDefault(functionId)
                ?? new InvalidOperationException($"Function {functionId} was never defined, or does not take and return unmanaged values.");
            _writer.WriteInt32(0);
            _writer.WriteInt32(0);
            for (int i = 0; i < count; i++)
            {
                _rawErrors.Add(new RawItemError(i, why));
            }
        }

        WriteRawErrors();
    }

    /// <summary>Appends the failures of a RawChunk's items (<see cref="_rawErrors"/>, then cleared) to the RawResults message.</summary>
    private void WriteRawErrors()
    {
        _writer.WriteInt32(_rawErrors.Count);
        foreach ((int index, Exception error) in _rawErrors)
        {
            _writer.WriteInt32(index);
            _writer.WriteError(RemoteError.From(error));
        }

        _rawErrors.Clear();
    }

    private static readonly System.Buffers.ReadOnlySpanAction<byte, WorkerLoop> s_onMessage = static (message, self) => self.OnMessage(message);

    /// <summary>The last message received in place, when it was not run there: a copy, valid until the next receive.</summary>
    private ReadOnlyMemory<byte> _received;

    /// <summary>Where <see cref="_received"/> is copied (grown to fit the messages seen, up to <see cref="ChildChannel.MaxReceiveBuffer"/>).</summary>
    private byte[] _receiveCopy = [];

    /// <summary>The largest RawChunk message run in place (see <see cref="OnMessage"/>).</summary>
    private const int InPlaceMaxLength = ChildChannel.Capacity / 4;

    /// <summary>The last message received in place was a RawChunk, run and answered there.</summary>
    private bool _ranInPlace;

    /// <summary>
    /// A message in the pipe's shared memory (valid during this call only): a RawChunk is run in place; anything else is
    /// copied into <see cref="_received"/> for the loop, as <see cref="ChildChannel.ReceiveBorrowed"/> would have.
    /// </summary>
    private void OnMessage(ReadOnlySpan<byte> message)
    {
        // A chunk run in place keeps its space in the receive ring until its results are sent, while the dispatcher may copy
        // the next chunk in (under the pool's lock, counting on that copy never waiting: ShmPool.Dispatcher). The free
        // space beside a chunk of at most a quarter of the ring always holds, in one stretch, a message of up to 3/8 of it,
        // so the next chunk of the same Map (the same size) never waits; larger chunks are copied out first, as before.
        _ranInPlace = _traceParent is null && message.Length > 0 && message.Length <= InPlaceMaxLength
            && message[0] == (byte)MessageKind.RawChunk && TryRunRawChunkInPlace(message);
        if (_ranInPlace)
        {
            _received = default;
        }
        else if (message.Length > ChildChannel.MaxReceiveBuffer)
        {
            _received = message.ToArray();
        }
        else
        {
            if (_receiveCopy.Length < message.Length)
            {
                _receiveCopy = new byte[(int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)message.Length)];
            }

            message.CopyTo(_receiveCopy);
            _received = new ReadOnlyMemory<byte>(_receiveCopy, 0, message.Length);
        }
    }

    /// <summary>The bytes of a RawChunk before its block, and of a RawResults before its block: kind, chunk id, two ints, the block's length.</summary>
    private const int RawHeaderLength = 1 + sizeof(long) + sizeof(int) + sizeof(int) + sizeof(int);

    /// <summary>
    /// Runs a RawChunk from the pipe's memory and writes its results straight into a loan of the send ring: no copy of the
    /// arguments in and none of the results out (for a Map of 1M ints, two of the worker's three passes over the items).
    /// False, having done nothing, when it does not apply (a function without a raw invoker, results longer than the ring
    /// takes, a malformed message): the loop then handles the message as any other.
    /// </summary>
    /// <remarks>
    /// Design: while it runs, the chunk keeps its space in the receive ring (released when the handler returns), where a
    /// copied-out chunk gave it back at once; and the loan may wait for room in the send ring, which only the parent's
    /// reader frees. That wait cannot close a cycle through the pool's lock (the dispatcher sends under it and may wait
    /// for room in this worker's receive ring): room in the send ring is held only by results the reader has not
    /// received, each of a chunk still in this worker's in-flight list, and the reader that waits for the lock holds one
    /// more received result of another; with this chunk that is three in flight, more than the dispatcher's default
    /// MaxChunksInFlightPerWorker (2), so the dispatcher is not sending to this worker meanwhile. (With a larger limit the
    /// same wait existed before: a worker blocked in Send does not drain its receive ring either.)
    /// </remarks>
    private bool TryRunRawChunkInPlace(ReadOnlySpan<byte> message)
    {
        if (message.Length < RawHeaderLength)
        {
            return false;
        }

        long chunkId = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(message[1..]);
        int functionId = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(message[9..]);
        int count = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(message[13..]);
        int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(message[17..]);
        if (count < 0 || length != message.Length - RawHeaderLength || !_rawInvokers.TryGetValue(functionId, out RawInvoker? raw))
        {
            return false;
        }

        long resultsLength = (long)count * raw.ResultSize;
        long total = RawHeaderLength + resultsLength + sizeof(int);
        if (total > ChildChannel.MaxMessageLength)
        {
            return false;
        }

        MapTimeline.Mark("w-received", message.Length);
        _rawErrors.Clear();
        ShmLoan loan = _channel.Loan((int)total);
        try
        {
            Span<byte> reply = loan.Span;
            reply[0] = (byte)MessageKind.RawResults;
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(reply[1..], chunkId);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(reply[9..], count);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(reply[13..], raw.ResultSize);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(reply[17..], (int)resultsLength);
            MapTimeline.Mark("w-run", chunkId);
            raw.RunBlockInto(message.Slice(RawHeaderLength, length), count, reply.Slice(RawHeaderLength, (int)resultsLength), _rawErrors);
            MapTimeline.Mark("w-ran", chunkId);
            if (_rawErrors.Count == 0)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(reply[(int)(RawHeaderLength + resultsLength)..], 0);
                loan.Commit((int)total);
                return true;
            }

            // Failures (their messages are of any length): the results go out through the writer, with them.
            _writer.Reset(MessageKind.RawResults);
            int body = RawHeaderLength - 1 + (int)resultsLength;
            reply.Slice(1, body).CopyTo(_writer.GetSpan(body));
            _writer.Advance(body);
        }
        finally
        {
            loan.Dispose(); // after a Commit, nothing; else the space is given back unsent
        }

        WriteRawErrors();
        _channel.Send(_writer.Written);
        return true;
    }

    private bool TrySend()
    {
        try
        {
            _channel.Send(_writer.Written);
            return true;
        }
        catch (ShmPeerClosedException)
        {
            return false;
        }
    }
}
