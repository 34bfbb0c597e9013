using ShmIpc.Tests.Common;

namespace ShmIpc.TestHost;

internal static partial class Scenarios
{
    static partial void RegisterFence()
    {
        // fence-echo queue|pipe sync|async <requests> [<replies>]: the sleeper side of FenceTests (FenceEcho), over two
        // queues (requests in, replies out) or one duplex pipe it connects to. The test sets SHMIPC_FENCE in its environment.
        Add("fence-echo", a =>
        {
            bool async = a[1] == "async";
            if (a[0] == "queue")
            {
                var options = new ShmQueueOptions { WaitStrategy = FenceEcho.Strategy };
                using ShmQueue requests = ShmQueue.Open(a[2], options);
                using ShmQueue replies = ShmQueue.Open(a[3], options);
                Say("READY");
                FenceEcho.ServeQueues(requests, replies, async).GetAwaiter().GetResult();
            }
            else
            {
                using ShmConnection pipe = ShmPipe.Connect(a[2], new ShmPipeOptions { WaitStrategy = FenceEcho.Strategy });
                Say("READY");
                FenceEcho.ServePipe(pipe, async).GetAwaiter().GetResult();
            }

            Say("DONE");
            return 0;
        });
    }
}
