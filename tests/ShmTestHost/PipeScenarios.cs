using ShmIpc.Tests.Common;

namespace ShmIpc.TestHost;

/// <summary>The child side of the pipe tests (tests/ShmQueue.Tests/PipeProcessTests.cs).</summary>
internal static partial class Scenarios
{
    private static readonly ShmPipeOptions s_pipeOptions = new()
    {
        WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(50) },
    };

    static partial void RegisterPipe()
    {
        // Connects to <name> and sends back every message until the peer closes; prints PEER-CLOSED.
        Add("pipe-echo", a =>
        {
            using ShmConnection connection = ShmPipe.Connect(a[0], s_pipeOptions);
            Say("READY");
            Echo(connection, int.MaxValue);
            Say("PEER-CLOSED");
            return 0;
        });

        // Connects to <name>; one thread sends <count> pattern messages while this one receives <count>
        // and checks them; prints DONE (or BAD <i>).
        Add("pipe-blast", a =>
        {
            using ShmConnection connection = ShmPipe.Connect(a[0], s_pipeOptions);
            int count = Int(a[1]);
            Say("READY");
            var sender = new Thread(() =>
            {
                for (int i = 0; i < count; i++)
                {
                    connection.Send(PipeMessages.Make(i, PipeMessages.LengthOf(i, connection.MaxMessageLength)));
                }
            });
            sender.Start();
            for (int i = 0; i < count; i++)
            {
                byte[] message = connection.Receive();
                if (message.Length != PipeMessages.LengthOf(i, connection.MaxMessageLength) || !PipeMessages.Matches(i, message))
                {
                    Say($"BAD {i}");
                    return 1;
                }
            }

            sender.Join();
            Say("DONE");
            return 0;
        });

        // Connects to <name>, sends <count> messages (4-byte index each), prints READY and holds until killed.
        Add("pipe-send-hold", a =>
        {
            ShmConnection connection = ShmPipe.Connect(a[0], s_pipeOptions);
            SendIndices(connection, Int(a[1]));
            Say("READY");
            Hold();
            return 0;
        });

        // Connects to <name>, sends <count> messages (4-byte index each), prints READY, closes its end on
        // the line "go" and prints CLOSED.
        Add("pipe-send-close", a =>
        {
            ShmConnection connection = ShmPipe.Connect(a[0], s_pipeOptions);
            SendIndices(connection, Int(a[1]));
            Say("READY");
            _ = Console.In.ReadLine();
            connection.Dispose();
            Say("CLOSED");
            return 0;
        });

        // Tries to connect to <name>, which has both ends held already: prints REFUSED <message>.
        Add("pipe-connect-refused", a =>
        {
            try
            {
                using ShmConnection connection = ShmPipe.Connect(a[0], s_pipeOptions);
                Say("CONNECTED");
            }
            catch (InvalidOperationException e)
            {
                Say("REFUSED " + e.Message);
            }

            return 0;
        });

        // Takes the end named by handover <token>, echoes <count> messages, hands the end back: prints TOKEN <token>.
        Add("pipe-handover-echo", a =>
        {
            ShmConnection connection = ShmConnection.AcquireHandover(a[0], s_pipeOptions);
            Say("READY");
            Echo(connection, Int(a[1]));
            Say("TOKEN " + connection.ReleaseForHandover());
            return 0;
        });
    }

    private static void Echo(ShmConnection connection, int count)
    {
        var buffer = new byte[connection.MaxMessageLength];
        for (int i = 0; i < count; i++)
        {
            int length;
            try
            {
                length = connection.ReceiveInto(buffer);
            }
            catch (ShmPeerClosedException)
            {
                return;
            }

            connection.Send(buffer.AsSpan(0, length));
        }
    }

    private static void SendIndices(ShmConnection connection, int count)
    {
        for (int i = 0; i < count; i++)
        {
            connection.Send(BitConverter.GetBytes(i));
        }
    }
}
