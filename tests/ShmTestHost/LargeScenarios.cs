using ShmIpc.Tests.Common;

namespace ShmIpc.TestHost;

// Children of LargeMessageTests: messages longer than the ring, through side segments.
internal static partial class Scenarios
{
    static partial void RegisterLarge()
    {
        // Enqueues <count> messages of <minLength>..<maxLength> bytes (LargeMessages pattern, sender <id>) to queue <name>,
        // saying "SENT <i>" after each. The parent kills it at random points.
        Add("large-produce", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            int id = Int(a[1]), count = Int(a[2]), min = Int(a[3]), max = Int(a[4]);
            var random = new Random(id);
            Say("READY");
            for (int i = 0; i < count; i++)
            {
                queue.Enqueue(LargeMessages.Make(id, i, random.Next(min, max + 1)), TimeSpan.FromSeconds(60));
                Say($"SENT {i}");
            }

            Say("DONE");
            return 0;
        });

        // Takes one message of queue <name> in place and holds it (inside the reader) until killed: a consumer that dies
        // after taking a side segment.
        Add("large-take-hold", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            Say("READY");
            queue.TryDequeue(static (span, _) =>
            {
                Say($"TAKEN {span.Length}");
                Hold();
                return 0;
            }, 0, TimeSpan.FromSeconds(60), out int _);
            return 0;
        });

        // Run under a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored: the parent starts it through `ulimit -f`): enqueues a
        // message of <length> bytes to queue <name>, whose side segment cannot be made, and says "REFUSED <type>: <message>";
        // then a small message and one of <fits> bytes (a side segment within the limit): "SENT".
        Add("large-refused", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            try
            {
                queue.Enqueue(LargeMessages.Make(4, 0, Int(a[1])));
                Say("ACCEPTED");
                return 1;
            }
            catch (IOException e)
            {
                Say($"REFUSED {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            }

            queue.Enqueue(LargeMessages.Make(4, 1, 100));
            queue.Enqueue(LargeMessages.Make(4, 2, Int(a[2])));
            Say("SENT");
            return 0;
        });

        // Connects to pipe <name> and sends one message of <length> bytes (sender 1, sequence 0), then echoes back
        // the length of each message it receives until the parent closes stdin.
        Add("large-pipe-send", a =>
        {
            using ShmConnection end = ShmPipe.Connect(a[0]);
            end.Send(LargeMessages.Make(1, 0, Int(a[1])), TimeSpan.FromSeconds(60));
            byte[] back = end.Receive(TimeSpan.FromSeconds(60));
            Say($"GOT {back.Length} {LargeMessages.Check(back).Sequence}");
            return 0;
        });
    }
}
