using System.Text;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Demo;

/// <summary>The static methods the demo's processes run (ShmProcess and ShmPool load them from this assembly).</summary>
internal static partial class DemoTargets
{
    /// <summary>Sum of i * i over [from, to).</summary>
    public static long SumOfSquares((long From, long To) range)
    {
        long sum = 0;
        for (long i = range.From; i < range.To; i++)
        {
            sum += i * i;
        }

        return sum;
    }

    /// <summary>Opens the queue by name and enqueues <c>Count</c> messages "producer P message K"; returns how many it sent.</summary>
    public static int Produce((string Queue, int Producer, int Count) job)
    {
        using ShmQueue queue = ShmQueue.Open(job.Queue);
        Span<byte> buffer = stackalloc byte[64];
        for (int k = 0; k < job.Count; k++)
        {
            int length = Encoding.ASCII.GetBytes($"producer {job.Producer} message {k}", buffer);
            queue.Enqueue(buffer[..length]);
        }

        return job.Count;
    }

    /// <summary>Connects to the pipe, pins itself to <c>Cpu</c>, echoes every message until the parent closes its end; returns how many it echoed.</summary>
    public static long Echo((string Pipe, int Cpu) job)
    {
        Affinity.Set(job.Cpu);
        using ShmConnection pipe = ShmPipe.Connect(job.Pipe);
        byte[] buffer = new byte[pipe.MaxMessageLength];
        long echoed = 0;
        try
        {
            while (true)
            {
                int length = pipe.ReceiveInto(buffer);
                pipe.Send(buffer.AsSpan(0, length));
                echoed++;
            }
        }
        catch (ShmPeerClosedException)
        {
            return echoed;
        }
    }

    /// <summary>Connects to the pipe and echoes with awaited calls (ReceiveAsync into a buffer, SendAsync) until the parent closes its end.</summary>
    public static long EchoAsync(string pipeName) => EchoAsyncCore(pipeName).GetAwaiter().GetResult();

    private static async Task<long> EchoAsyncCore(string pipeName)
    {
        using ShmConnection pipe = ShmPipe.Connect(pipeName);
        byte[] buffer = new byte[pipe.MaxMessageLength];
        long echoed = 0;
        try
        {
            while (true)
            {
                int length = await pipe.ReceiveAsync(buffer.AsMemory()).ConfigureAwait(false);
                await pipe.SendAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
                echoed++;
            }
        }
        catch (ShmPeerClosedException)
        {
            return echoed;
        }
    }

    /// <summary>Sends one greeting on the pipe end it was given (the same end as its siblings), then closes its copy.</summary>
    public static int Greet((ShmConnection End, int Child) job)
    {
        using ShmConnection end = job.End;
        end.Send(Encoding.UTF8.GetBytes($"hello from child {job.Child}, pid {Environment.ProcessId}"));
        return job.Child;
    }

    /// <summary>Takes jobs from the queue until it is shut down and drained; returns how many it took.</summary>
    public static int TakeUntilShutDown(string queueName)
    {
        using ShmQueue queue = ShmQueue.Open(queueName);
        int taken = 0;
        try
        {
            while (true)
            {
                _ = queue.Dequeue();
                taken++;
            }
        }
        catch (ShmQueueShutDownException)
        {
            return taken;
        }
    }

    /// <summary>Waits for the start event, then adds 1 to the shared value <c>Count</c> times, each under the value's lock.</summary>
    public static long AddUnderLock((ShmValue<long> Value, ShmEvent Go, int Count) job)
    {
        using ShmValue<long> value = job.Value;
        using ShmEvent go = job.Go;
        go.Wait(TimeSpan.FromSeconds(30));
        for (int i = 0; i < job.Count; i++)
        {
            using (value.Lock.Hold())
            {
                value.Value++;
            }
        }

        return job.Count;
    }

    /// <summary>x * x.</summary>
    public static long Square(int x) => (long)x * x;

    /// <summary>x * x after 200 ms of sleep: something worth waiting for with a timeout.</summary>
    public static long SlowSquare(int x)
    {
        Thread.Sleep(200);
        return (long)x * x;
    }

    /// <summary>This worker's process id, to show which worker ran an item.</summary>
    public static int WhoAmI(int _) => Environment.ProcessId;

    /// <summary>The demo's element-wise kernel for MapInPlace.</summary>
    public static float TwicePlusOne(float x) => (2 * x) + 1;

    /// <summary>Takes one job from the acknowledged queue, says so, and never acks it (the demo kills this process).</summary>
    public static int TakeAndStall((string Queue, ShmEvent Taken) job)
    {
        using ShmQueue queue = ShmQueue.Open(job.Queue);
        ShmDelivery delivery = queue.Take(TimeSpan.FromSeconds(30));
        job.Taken.Set();
        Thread.Sleep(Timeout.Infinite); // the work that never finishes: the parent kills us here
        return delivery.DeliveryCount;
    }
}
