using Microsoft.Extensions.Logging;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

// The caller fast path of a synchronous Apply (see the Design notes in ShmPool.Dispatcher.cs).
public sealed partial class ShmPool
{
    /// <summary>
    /// The fast path of a synchronous Apply: sends <paramref name="chunk"/> to an idle worker whose reader is
    /// parked and returns that worker, now held by the caller for receiving; or queues it as usual (null).
    /// </summary>
    private PoolWorker? SubmitAndTakeReceive(PoolChunk chunk)
    {
        lock (_lock)
        {
            ThrowIfNotTakingTasks();
            PoolWorker? best = null;
            if (_queue.Count == 0)
            {
                foreach (PoolWorker? w in _slots)
                {
                    if (w is { IsFreeForCaller: true } && (best is null || w.LastResultOrder > best.LastResultOrder))
                    {
                        best = w;
                    }
                }
            }

            if (best is null)
            {
                _queue.AddLast(chunk);
                Pump();
                return null;
            }

            best.CallerTakesPipe();
            SendChunk(best, chunk);
            if (chunk.Worker != best)
            {
                // It died a moment ago: the chunk was queued again; let its reader see to the end.
                best.CallerReleasesPipe();
                best.ReaderWake.Set();
                Pump();
                return null;
            }

            return best;
        }
    }

    /// <summary>
    /// Receives on <paramref name="worker"/>'s pipe, as its reader would, until <paramref name="chunk"/> completes
    /// or the worker ends; then hands the pipe back to the reader thread (which settles a worker's end).
    /// </summary>
    private void ReceiveFor(PoolWorker worker, CallerChunk chunk)
    {
        bool handedBack = false;
        try
        {
            while (!chunk.IsCompleted)
            {
                if (!worker.Channel.TryReceiveBorrowed(out ReadOnlyMemory<byte> message, ReceiveSlice))
                {
                    if (worker.Process.HasExited)
                    {
                        break;
                    }

                    continue;
                }

                if (IsResultOf(chunk, message.Span))
                {
                    handedBack = true;
                    TakeOwnResult(worker, chunk, message);
                    return;
                }

                Handle(worker, message);
            }
        }
        catch (ShmPeerClosedException)
        {
            // Gone: the reader learns it again and settles the chunks.
        }
#pragma warning disable CA1031 // As in ReadLoop: a protocol error ends this worker, and the reader settles it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _options.Logger?.LogError(e, "ShmPool {Pool}: worker {Pid} sent something unreadable; killing it.", _poolId, worker.Pid);
            TakeOutOfService(worker);
        }
        finally
        {
            if (!handedBack)
            {
                lock (_lock)
                {
                    HandBack(worker);
                }
            }
        }
    }

    /// <summary>A Results or RawResults message for <paramref name="chunk"/>.</summary>
    private static bool IsResultOf(PoolChunk chunk, ReadOnlySpan<byte> message) =>
        message.Length >= 1 + sizeof(long)
        && message[0] is (byte)MessageKind.Results or (byte)MessageKind.RawResults
        && System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(message[1..]) == chunk.Id;

    /// <summary>
    /// The common end of <see cref="ReceiveFor"/>: the caller's own result. Read into the chunk while the caller
    /// still holds the pipe (the message lies in the pipe's receive buffer); then one lock section takes the chunk
    /// off the worker and hands the pipe back, whatever happened; the chunk completes (or fails) last. As
    /// <see cref="Handle"/> would, with one lock section instead of two and no dispatch on the message's kind.
    /// </summary>
    private void TakeOwnResult(PoolWorker worker, CallerChunk chunk, ReadOnlyMemory<byte> message)
    {
        Exception? failure = null;
        bool unreadable = false;
        try
        {
            bool raw = message.Span[0] == (byte)MessageKind.RawResults;
            if (!raw)
            {
                // The serializer may keep what it was given (see Handle).
                message = message.ToArray();
            }

            var reader = new MessageReader(message);
            _ = reader.ReadKind();
            _ = reader.ReadInt64();
            chunk.ReadResults(ref reader, _serializer, raw);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or IndexOutOfRangeException)
        {
            unreadable = true;
            failure = new ShmWorkerCrashedException($"Worker process {worker.Pid} returned results that cannot be read ({e.Message}); it is replaced.", e);
            _options.Logger?.LogError(e, "ShmPool {Pool}: worker {Pid} sent something unreadable; killing it.", _poolId, worker.Pid);
        }
#pragma warning disable CA1031 // Anything else (out of memory copying a large result) fails this task only; the pipe is handed back below.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failure = e;
        }

        lock (_lock)
        {
            int index = IndexOf(worker.InFlight, chunk.Id);
            if (unreadable)
            {
                // Out of service before anyone can pick it (Pump, the next Apply): killed on purpose, so the other
                // chunks it may hold go to other workers rather than fail; its reader settles its end.
                if (index >= 0)
                {
                    worker.InFlight.RemoveAt(index);
                    chunk.Worker = null;
                }

                Kill(worker);
            }
            else if (index >= 0)
            {
                TakeFromWorker(worker, index);
            }

            HandBack(worker);
            Pump();
        }

        if (failure is null)
        {
            chunk.Finish();
        }
        else
        {
            chunk.Fail(failure);
        }
    }

    /// <summary>The caller lets go of the worker's pipe; the reader takes it if there is something to receive. Under the lock.</summary>
    private static void HandBack(PoolWorker worker)
    {
        worker.CallerReleasesPipe();

        // Only when there is something to receive: waking the parked reader after every Apply costs a futex wake.
        if (worker.NeedsReader)
        {
            worker.ReaderWake.Set();
        }
    }
}
