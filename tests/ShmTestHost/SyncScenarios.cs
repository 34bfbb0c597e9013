namespace ShmIpc.TestHost;

internal static partial class Scenarios
{
    static partial void RegisterSync()
    {
        // lock-hold <name>: takes the lock, says READY, holds it until stdin closes (then releases: RELEASED) or it is killed.
        Add("lock-hold", a =>
        {
            using ShmLock lk = ShmLock.Open(a[0]);
            lk.Acquire();
            Say("READY");
            Hold();
            lk.Release();
            Say("RELEASED");
            return 0;
        });

        // lock-hold-value <name>: takes ShmValue<int> <name>'s lock, adds 1 to the value, says READY, holds until killed.
        Add("lock-hold-value", a =>
        {
            using ShmValue<int> value = ShmValue<int>.Open(a[0]);
            value.Lock.Acquire();
            value.Value++;
            Say("READY");
            Hold();
            return 0;
        });

        // value-count <name> <iterations>: adds 1 to ShmValue<long> <name> <iterations> times, each under its lock.
        Add("value-count", a =>
        {
            using ShmValue<long> value = ShmValue<long>.Open(a[0]);
            int iterations = Int(a[1]);
            Say("READY");
            for (int i = 0; i < iterations; i++)
            {
                using (value.Lock.Hold())
                {
                    value.Value++;
                }
            }

            Say("DONE");
            return 0;
        });

        // event-wait <name> <timeoutMs>: says READY, waits for the event; SET or TIMEOUT.
        Add("event-wait", a =>
        {
            using ShmEvent ev = ShmEvent.Open(a[0]);
            Say("READY");
            Say(ev.Wait(TimeSpan.FromMilliseconds(Int(a[1]))) ? "SET" : "TIMEOUT");
            return 0;
        });

        // semaphore-take <name> <count>: says READY, takes <count> counts one by one, then TOOK <count>.
        Add("semaphore-take", a =>
        {
            using ShmSemaphore semaphore = ShmSemaphore.Open(a[0]);
            Say("READY");
            int count = Int(a[1]);
            for (int i = 0; i < count; i++)
            {
                semaphore.Wait();
            }

            Say($"TOOK {count}");
            return 0;
        });

        // condition-wait <lock> <condition> <timeoutMs>: takes the lock, says READY, waits on the condition; NOTIFIED or TIMEOUT.
        Add("condition-wait", a =>
        {
            using ShmLock lk = ShmLock.Open(a[0]);
            using ShmCondition condition = ShmCondition.Open(a[1], lk);
            lk.Acquire();
            Say("READY");
            bool notified = condition.Wait(TimeSpan.FromMilliseconds(Int(a[2])));
            Say(notified ? "NOTIFIED" : "TIMEOUT");
            lk.Release();
            return 0;
        });

        // barrier-wait <name> <timeoutMs>: opens the barrier, says READY, arrives; PHASE <n>, TIMEOUT or BROKEN.
        Add("barrier-wait", a =>
        {
            using ShmBarrier barrier = ShmBarrier.Open(a[0]);
            Say("READY");
            try
            {
                long phase = barrier.CurrentPhase;
                Say(barrier.SignalAndWait(TimeSpan.FromMilliseconds(Int(a[1]))) ? $"PHASE {phase}" : "TIMEOUT");
            }
            catch (ShmBarrierBrokenException)
            {
                Say("BROKEN");
            }

            return 0;
        });

        // barrier-open-hold <name>: opens the barrier (a participant), says READY, never arrives; killed by the test.
        Add("barrier-open-hold", a =>
        {
            using ShmBarrier barrier = ShmBarrier.Open(a[0]);
            Say("READY");
            Hold();
            return 0;
        });

        // lock-try-open <name>: says OPENED, or REFUSED <type> <message>.
        Add("lock-try-open", a =>
        {
            try
            {
                using ShmLock lk = ShmLock.Open(a[0]);
                Say("OPENED");
            }
            catch (IOException e)
            {
                Say($"REFUSED {e.GetType().Name} {e.Message.ReplaceLineEndings(" ")}");
            }

            return 0;
        });
    }
}
