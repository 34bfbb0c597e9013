using System.Diagnostics;
using ShmIpc.Diagnostics;
using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>
/// One unit of dispatch: a run of items of one function, encoded once as a Chunk message (kept for
/// resending when its worker dies). Its state changes only under the pool's lock.
/// </summary>
internal abstract class PoolChunk
{
    protected PoolChunk(long id, PoolFunction function, ReadOnlyMemory<byte> message, int count)
    {
        Id = id;
        Function = function;
        Message = message;
        Count = count;
    }

    public long Id { get; protected set; }

    public PoolFunction Function { get; protected set; }

    /// <summary>The encoded Chunk message.</summary>
    public ReadOnlyMemory<byte> Message { get; protected set; }

    public int Count { get; protected set; }

    /// <summary>The worker holding it, or null while it waits in the queue.</summary>
    public PoolWorker? Worker { get; set; }

    /// <summary>Times it was sent again after its worker crashed.</summary>
    public int Retries { get; set; }

    /// <summary>
    /// Times it is sent again after crashes whatever <see cref="ShmPoolOptions.TaskRetries"/> says: 0, but more for a chunk
    /// that may safely run twice (an in-place chunk writes the same output slots again).
    /// </summary>
    public virtual int CrashRetries => 0;

    /// <summary>Why it is being stopped (cancel, timeout) while its worker is being killed; null otherwise.</summary>
    public Exception? StopReason { get; set; }

    public abstract bool IsCompleted { get; }

    /// <summary>When it was first sent (Stopwatch ticks), for the duration histogram; 0 when nobody measures.</summary>
    private long _sentAt;

    /// <summary>Its span, when someone listens to <see cref="ShmTelemetry.ActivitySource"/>; ended when it is settled.</summary>
    public Activity? Activity { get; private set; }

    /// <summary>
    /// On the caller's thread, as the task is made: its span starts here, a child of the caller's current activity,
    /// and the caller's current activity stays what it was (the span ends on whichever thread settles the task).
    /// </summary>
    public void BeginTelemetry(string name)
    {
        _sentAt = 0;
        _started = false;
        Activity = null;
        if (ShmTelemetry.ActivitySource.HasListeners())
        {
            Activity? current = Activity.Current;
            Activity = ShmTelemetry.ActivitySource.StartActivity(name, ActivityKind.Producer);
            Activity.Current = current;
        }
    }

    /// <summary>Sent to a worker; a send again after a crash is not a new start (it counts as a retry where the crash is seen).</summary>
    public void OnSent()
    {
        if (_started)
        {
            return;
        }

        _started = true;
        Hosting.MapTimeline.Mark("chunk-sent", Id);
        if (ShmMetrics.TasksStarted.Enabled)
        {
            ShmMetrics.TasksStarted.Add(1);
        }

        if (ShmMetrics.TaskDuration.Enabled)
        {
            _sentAt = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Counted as started (reset for each use of a reused chunk).</summary>
    private bool _started;

    /// <summary>Completed or failed, once: counts it, times it, ends its span.</summary>
    protected void OnSettled(Exception? failure)
    {
        if (failure is null ? ShmMetrics.TasksCompleted.Enabled : ShmMetrics.TasksFailed.Enabled)
        {
            (failure is null ? ShmMetrics.TasksCompleted : ShmMetrics.TasksFailed).Add(1);
        }

        if (_sentAt != 0)
        {
            ShmMetrics.TaskDuration.Record(Stopwatch.GetElapsedTime(_sentAt).TotalSeconds);
            _sentAt = 0;
        }

        if (Activity is Activity activity)
        {
            Activity = null;
            if (failure is not null)
            {
                activity.SetStatus(ActivityStatusCode.Error, failure.Message);
            }

            // Stopping an activity makes its parent current on this thread: the settling thread (a pool reader, a
            // canceller) keeps its own current activity instead.
            Activity? ambient = Activity.Current;
            activity.Dispose();
            Activity.Current = ambient;
        }
    }

    /// <summary>Reads the results that follow the chunk id in a Results message (or a RawResults one).</summary>
    public abstract void Complete(ref MessageReader reader, IShmObjectSerializer serializer, bool raw);

    public abstract void Fail(Exception exception);
}
