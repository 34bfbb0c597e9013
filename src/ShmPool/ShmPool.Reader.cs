using System.Diagnostics;
using Microsoft.Extensions.Logging;
using ShmIpc.Hosting;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

// The reader: each worker's receiver thread (see the Design notes in ShmPool.Dispatcher.cs).
public sealed partial class ShmPool
{
    /// <summary>How often a parked reader asks the OS whether its idle worker died.</summary>
    private static readonly TimeSpan IdleCheckInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest single receive of a reader, after which it re-checks whether it should receive at all.</summary>
    private static readonly TimeSpan ReceiveSlice = TimeSpan.FromMilliseconds(250);

    /// <summary>The worker's receiver whenever no caller is; ends when the worker has ended.</summary>
    private void ReadLoop(PoolWorker worker)
    {
        try
        {
            while (true)
            {
                if (!TakeReceive(worker))
                {
                    // Idle, or a caller receives: park until woken; now and then ask the OS whether it died.
                    if (!worker.ReaderWake.Wait(IdleCheckInterval) && worker.Process.HasExited)
                    {
                        lock (_lock)
                        {
                            worker.OnExitSeen();
                        }
                    }

                    continue;
                }

                ReadOnlyMemory<byte> message;
                try
                {
                    ReaderSpin spin = worker.ReaderSpin!;
                    bool spinning = spin.ShouldSpin;
                    long started = Stopwatch.GetTimestamp();
                    bool received = worker.Channel.TryReceiveBorrowed(out message, ReceiveSlice, spinning ? null : _noSpin);
                    if (received)
                    {
                        spin.Observe(spinning, Stopwatch.GetTimestamp() - started);

                        // A result is a sign of life: no /proc lookup of the worker before the next sleep (one per result, ~13 µs,
                        // when results come less often than PeerLiveness's interval: Pool(8) on 2 cores, 1 ms items). A worker
                        // that dies is still found within a sleep slice (and by HasExited below at each ReceiveSlice).
                        worker.Channel.NotePeerAlive();
                    }
                    else
                    {
                        // A worker that died before it connected leaves the pipe looking fine: ask the OS.
                        if (!worker.Process.HasExited)
                        {
                            continue;
                        }

                        if (!worker.Channel.TryReceiveBorrowed(out message, TimeSpan.Zero))
                        {
                            break;
                        }
                    }
                }
                catch (ShmPeerClosedException)
                {
                    break;
                }

                Handle(worker, message);
            }
        }
#pragma warning disable CA1031 // A protocol error ends this worker, not the pool: it is killed and replaced.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _options.Logger?.LogError(e, "ShmPool {Pool}: worker {Pid} sent something unreadable; killing it.", _poolId, worker.Pid);
            TakeOutOfService(worker);
        }

        OnWorkerEnded(worker);
    }

    /// <summary>Decides whether the reader receives now (true) or parks; as the pipe's receiver it keeps callers off the pipe.</summary>
    private bool TakeReceive(PoolWorker worker)
    {
        lock (_lock)
        {
            bool take = worker.ReaderTakesPipe();
            if (!take)
            {
                // Reset under the lock: every Set that matters happens under it too, after the state it announces.
                worker.ReaderWake.Reset();
            }

            return take;
        }
    }

    /// <summary>Takes in-flight chunk <paramref name="index"/> off <paramref name="worker"/>, whose result arrived. Under the lock.</summary>
    private PoolChunk TakeFromWorker(PoolWorker worker, int index)
    {
        PoolChunk chunk = worker.InFlight[index];
        worker.InFlight.RemoveAt(index);
        chunk.Worker = null;
        worker.LastResultOrder = ++_resultCount;
        if (index == 0 && worker.InFlight.Count > 0 && _options.TaskTimeout is not null)
        {
            // The next chunk starts running now (read only by EnforceTaskTimeout: no clock read without a TaskTimeout).
            worker.HeadStarted = Stopwatch.GetTimestamp();
        }

        return chunk;
    }

    /// <summary>
    /// Handles one message from <paramref name="worker"/>. It lies in the worker's receive buffer (see
    /// <see cref="ChildChannel.TryReceiveBorrowed"/>), valid until the next receive: Results are copied out
    /// first, as their values go to the serializer, which may keep what it was given.
    /// </summary>
    private void Handle(PoolWorker worker, ReadOnlyMemory<byte> message)
    {
        if (!message.IsEmpty && message.Span[0] == (byte)MessageKind.Results)
        {
            message = message.ToArray();
        }

        var reader = new MessageReader(message);
        MessageKind kind = reader.ReadKind();
        switch (kind)
        {
            case MessageKind.Ready:
                StartTimeline.Mark("ready-received");
                lock (_lock)
                {
                    worker.OnReady();
                    _workersChanged.Set();
                    Pump();
                    KickStarts(); // it left the start window
                }

                break;

            case MessageKind.Results:
            case MessageKind.RawResults:
            case MessageKind.InPlaceResults:
                long chunkId = reader.ReadInt64();
                PoolChunk? chunk;
                lock (_lock)
                {
                    int index = IndexOf(worker.InFlight, chunkId);
                    if (index < 0)
                    {
                        throw new InvalidDataException($"Worker {worker.Pid} returned chunk {chunkId}, which it does not hold.");
                    }

                    chunk = TakeFromWorker(worker, index);
                    Pump();
                }

                try
                {
                    chunk.Complete(ref reader, _serializer, raw: kind == MessageKind.RawResults);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or IndexOutOfRangeException)
                {
                    // The chunk already left the worker's list: fail it here, or its caller would wait forever.
                    // Then let the error end this worker (see ReadLoop).
                    chunk.Fail(new ShmWorkerCrashedException($"Worker process {worker.Pid} returned results that cannot be read ({e.Message}); it is replaced.", e));
                    throw;
                }

                break;

            case MessageKind.InitFailed:
                ShmRemoteException error = reader.ReadError().ToException();
                _options.Logger?.LogError("ShmPool {Pool}: the initializer failed in worker {Pid}: {Error}", _poolId, worker.Pid, error.Message);
                lock (_lock)
                {
                    _broken ??= new InvalidOperationException($"the initializer threw in worker {worker.Pid}: {error.Message}", error);
                    FailQueued(_broken);
                    _workersChanged.Set();
                }

                break;

            default:
                throw new InvalidDataException($"Worker {worker.Pid} sent a message of an unknown kind.");
        }
    }

    private static int IndexOf(List<PoolChunk> chunks, long chunkId)
    {
        for (int i = 0; i < chunks.Count; i++)
        {
            if (chunks[i].Id == chunkId)
            {
                return i;
            }
        }

        return -1;
    }
}
