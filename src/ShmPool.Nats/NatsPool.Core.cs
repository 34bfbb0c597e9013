using System.Globalization;
using NATS.Client.Core;
using ShmIpc.Nats.Internal;

namespace ShmIpc.Nats;

// The direct task path (NatsPoolOptions.Durable = false): tasks go as core NATS requests to the workers' queue group.
public sealed partial class NatsPool
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, DirectSend> _direct = new();

    /// <summary>Sends one task as a core request to the pool's queue group; its replies come to <see cref="ReadDirectRepliesAsync"/>.</summary>
    private async Task SendDirectAsync(PendingTask task, byte[] body)
    {
        var headers = new NatsHeaders
        {
            [PoolHeaders.Task] = task.Id.ToString(CultureInfo.InvariantCulture),
            [PoolHeaders.Beat] = ((long)_options.HeartbeatTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
        };
        try
        {
            byte[] payload = await WrapAsync(task, body, headers).ConfigureAwait(false);
            var send = new DirectSend(task, payload, headers, _subjects.DirectReply(_callerId, task.Id));
            _direct[task.Id] = send;
            await ResendAsync(send).ConfigureAwait(false);
        }
        catch (Exception e) when (_pending.TryRemove(task.Id, out _))
        {
            task.Fail(e is OperationCanceledException ? new ObjectDisposedException(nameof(NatsPool), $"The NATS pool '{PoolName}' was terminated.")
                : new IOException($"{task.Describe}: the server at {_options.Url} did not take the task: {e.Message}", e));
        }
    }

    /// <summary>(Re)publishes a direct task; a failed publish (the connection down) leaves it waiting, to be sent again by the monitor.</summary>
    private async Task ResendAsync(DirectSend send)
    {
        try
        {
            await _connection.PublishAsync(_subjects.DirectTasks, send.Payload, headers: send.Headers, replyTo: send.ReplyTo, cancellationToken: _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (NatsConnect.IsTransient(e) && !_stop.IsCancellationRequested)
        {
            send.NoWorker(Environment.TickCount64);
        }
    }

    /// <summary>Replies to direct tasks: a result (or the remote exception), an in-progress ping, or the server's "no responders".</summary>
    private async Task ReadDirectRepliesAsync()
    {
        CancellationToken stop = _stop.Token;
        string subject = _subjects.DirectReply(_callerId, null);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await foreach (NatsMsg<byte[]> message in _connection.SubscribeAsync<byte[]>(subject, cancellationToken: stop).ConfigureAwait(false))
                {
                    if (!long.TryParse(message.Subject.AsSpan(message.Subject.LastIndexOf('.') + 1), NumberStyles.None, CultureInfo.InvariantCulture, out long id)
                        || !_direct.TryGetValue(id, out DirectSend? send))
                    {
                        continue;
                    }

                    if (message.HasNoResponders)
                    {
                        send.NoWorker(Environment.TickCount64);
                    }
                    else if (message.Headers?[PoolHeaders.Progress] is { Count: > 0 })
                    {
                        send.Sign(Environment.TickCount64);
                    }
                    else
                    {
                        await TakeResultAsync(message.Data, message.Headers, stop).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (NatsConnect.IsTransient(e))
            {
                await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The direct path's share of <see cref="Monitor"/>: sends again a task whose worker went silent (or that no worker
    /// got), and fails it once <see cref="NatsPoolOptions.TaskRetries"/> workers were lost with it.
    /// </summary>
    /// <remarks>
    /// Design: a direct task is Sent (a worker may hold it: each reply or in-progress ping renews it) or NoWorker (the
    /// server answered "no responders", or the publish failed). Sent with no sign for HeartbeatTimeout means its worker
    /// was lost: sent again, one loss counted, unless the connection was down meanwhile (the server forgot it; not the
    /// worker's fault). NoWorker is sent again once a worker heartbeat came after it went NoWorker; it fails after
    /// NoWorkerTimeout as the durable path does. A resend that duplicates a slow worker's task is harmless to the
    /// caller: the first result taken removes the task from the pending table and the second is dropped.
    /// </remarks>
    private void MonitorDirect(long now)
    {
        if (_direct.IsEmpty)
        {
            return;
        }

        bool connected = _connection.ConnectionState == NatsConnectionState.Open;
        long lastWorker = Volatile.Read(ref _lastWorkerSeenTicks);
        foreach (DirectSend send in _direct.Values)
        {
            if (!_pending.ContainsKey(send.Task.Id))
            {
                _direct.TryRemove(send.Task.Id, out _);
                continue;
            }

            DirectAction action = send.Check(now, connected, lastWorker, (long)_options.HeartbeatTimeout.TotalMilliseconds,
                (long)_options.NoWorkerTimeout.TotalMilliseconds, _options.TaskRetries);
            if (action == DirectAction.Resend)
            {
                _ = ResendAsync(send);
            }
            else if (action != DirectAction.None && _pending.TryRemove(send.Task.Id, out _))
            {
                _direct.TryRemove(send.Task.Id, out _);
                send.Task.Fail(action == DirectAction.FailNoWorker ? NoWorkerError(send.Task) : new ShmWorkerCrashedException(
                    $"{send.Task.Describe}: the task was given to {_options.TaskRetries + 1} workers and each went silent (no result, no in-progress " +
                    $"ping) for the heartbeat timeout of {_options.HeartbeatTimeout.TotalSeconds:0.#} s: killed, or cut off. TaskRetries is {_options.TaskRetries}."));
            }
        }
    }

    private enum DirectAction
    {
        None,
        Resend,
        FailNoWorker,
        FailCrashed,
    }

    /// <summary>A direct task in flight: what to send again, and the state <see cref="MonitorDirect"/> judges.</summary>
    private sealed class DirectSend(PendingTask task, byte[] payload, NatsHeaders headers, string replyTo)
    {
        private readonly object _lock = new();
        private bool _noWorker;
        private bool _interrupted;
        private long _sinceTicks = Environment.TickCount64;
        private long _noWorkerSinceTicks;
        private int _losses;

        public PendingTask Task { get; } = task;

        public byte[] Payload { get; } = payload;

        public NatsHeaders Headers { get; } = headers;

        public string ReplyTo { get; } = replyTo;

        /// <summary>A worker holds the task and is alive (an in-progress ping).</summary>
        public void Sign(long now)
        {
            lock (_lock)
            {
                _noWorker = false;
                _sinceTicks = now;
            }
        }

        /// <summary>No worker got the task.</summary>
        public void NoWorker(long now)
        {
            lock (_lock)
            {
                if (!_noWorker)
                {
                    _noWorker = true;
                    _noWorkerSinceTicks = now;
                }

                _sinceTicks = now;
            }
        }

        public DirectAction Check(long now, bool connected, long lastWorkerTicks, long heartbeatMs, long noWorkerMs, int retries)
        {
            lock (_lock)
            {
                if (!connected)
                {
                    _interrupted = true;
                    _sinceTicks = now;
                    return DirectAction.None;
                }

                if (_noWorker)
                {
                    if (now - _noWorkerSinceTicks > noWorkerMs)
                    {
                        return DirectAction.FailNoWorker;
                    }

                    if (lastWorkerTicks <= _sinceTicks)
                    {
                        return DirectAction.None;
                    }

                    _noWorker = false;
                    _sinceTicks = now;
                    return DirectAction.Resend;
                }

                if (now - _sinceTicks <= heartbeatMs)
                {
                    return DirectAction.None;
                }

                if (!_interrupted && ++_losses > retries)
                {
                    return DirectAction.FailCrashed;
                }

                _interrupted = false;
                _sinceTicks = now;
                return DirectAction.Resend;
            }
        }
    }
}
