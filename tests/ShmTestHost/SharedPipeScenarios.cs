using System.Globalization;
using ShmIpc.Tests.Common;
using ShmIpc.Layout;
using ShmIpc.Memory;

namespace ShmIpc.TestHost;

/// <summary>The child side of the shared-end tests (tests/ShmQueue.Tests/PipeSharedTests.cs).</summary>
internal static partial class Scenarios
{
    static partial void RegisterSharedPipe()
    {
        // Attaches with share <token>, receives until the peer closes; prints GOT <indices, comma-separated> (4-byte
        // index messages) and exits.
        Add("pipe-shared-receive", a =>
        {
            using ShmConnection connection = ShmConnection.AcquireHandover(a[0], s_pipeOptions);
            Say("READY");
            var got = new List<int>();
            try
            {
                while (true)
                {
                    byte[] message = connection.Receive();
                    if (message.Length != 4)
                    {
                        Say($"BAD length {message.Length}");
                        return 1;
                    }

                    got.Add(BitConverter.ToInt32(message));
                }
            }
            catch (ShmPeerClosedException)
            {
            }

            Say("GOT " + string.Join(',', got));
            return 0;
        });

        // Attaches with share <token>, sends <count> messages "<tag>:<i>" padded to <length> bytes; prints SENT and
        // closes its copy.
        Add("pipe-shared-send", a =>
        {
            using ShmConnection connection = ShmConnection.AcquireHandover(a[0], s_pipeOptions);
            int count = Int(a[2]);
            Say("READY");
            for (int i = 0; i < count; i++)
            {
                connection.Send(PipeMessages.Tagged(a[1], i, Int(a[3])));
            }

            Say("SENT");
            return 0;
        });

        // Attaches with share <token>, prints READY; on the line "close" closes its copy and prints CLOSED; holds
        // until killed otherwise.
        Add("pipe-shared-attach-hold", a =>
        {
            ShmConnection connection = ShmConnection.AcquireHandover(a[0], s_pipeOptions);
            Say("READY");
            if (Console.In.ReadLine() == "close")
            {
                connection.Dispose();
                Say("CLOSED");
            }

            Hold();
            return 0;
        });

        // Attaches with share <token> and takes the SendLock of <ring> (the ring its end sends on), as a sender in the
        // middle of a copy holds it (a raw CAS of its identity word, through the layout constants); prints HOLDING and
        // waits to be killed.
        Add("pipe-shared-hold-send-lock", a =>
        {
            ShmConnection connection = ShmConnection.AcquireHandover(a[0], s_pipeOptions);
            using ShmSegment raw = ShmSegment.Open(connection.Name, SegmentKind.Pipe, TimeSpan.FromSeconds(2));
            unsafe
            {
                byte* word = raw.Control + PipeDescriptor.RingControlOffset(Int(a[1])) + SpscRingDescriptor.SendLockOffset;
                ulong me = SharedMemoryPlatform.Current.CurrentProcess.ToWord();
                if (MappedAtomics.CompareExchangeInt64(word, (long)me, 0) != 0)
                {
                    Say("BAD the send lock was held");
                    return 1;
                }
            }

            Say("HOLDING");
            Hold();
            GC.KeepAlive(connection);
            return 0;
        });

        // Attaches with share <token> and receives in a ReceiveMany handler that never returns (it holds the end's
        // ReceiveLock): prints IN-HANDLER <index> and waits to be killed.
        Add("pipe-shared-hold-receive-lock", a =>
        {
            ShmConnection connection = ShmConnection.AcquireHandover(a[0], s_pipeOptions);
            Say("READY");
            connection.ReceiveMany(static (m, _) =>
            {
                Say("IN-HANDLER " + BitConverter.ToInt32(m).ToString(CultureInfo.InvariantCulture));
                Hold();
            }, 0, 1, TimeSpan.FromMinutes(5));
            return 0;
        });
    }
}
