namespace ShmIpc.TestHost;

// Child sides of the joinable-queue tests (JoinableQueueProcessTests).
internal static partial class Scenarios
{
    static partial void RegisterJoinable()
    {
        // join-work <name> <count>: dequeues count messages and marks all but the last done at once; prints
        // "HELD <unfinished>", waits for a line on stdin, marks the last one done, prints DONE. Killed while waiting, it is a
        // consumer that died before its TaskDone.
        Add("join-work", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            int count = Int(a[1]);
            Say("READY");
            for (int i = 0; i < count; i++)
            {
                _ = queue.Dequeue(TimeSpan.FromSeconds(60));
                if (i < count - 1)
                {
                    queue.TaskDone();
                }
            }

            Say($"HELD {queue.UnfinishedTasks}");
            _ = Console.ReadLine();
            queue.TaskDone();
            Say("DONE");
            return 0;
        });

        // join-put <name> <count>: enqueues count one-byte messages, prints DONE.
        Add("join-put", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            int count = Int(a[1]);
            Say("READY");
            for (int i = 0; i < count; i++)
            {
                queue.Enqueue([(byte)i], TimeSpan.FromSeconds(60));
            }

            Say("DONE");
            return 0;
        });
    }
}
