using System.Globalization;
using ShmIpc.Tests.Common;
using ShmIpc.TestHost;

// The child side of cross-process tests: "ShmTestHost <scenario> <args...>". Each scenario prints
// READY when it is set up (tests wait for that line, never sleep) and exits 0 when done.
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: ShmTestHost <scenario> [args...]");
    return 2;
}

try
{
    return Scenarios.Run(args[0], args[1..]);
}
catch (Exception e)
{
    Console.Error.WriteLine($"{e.GetType().FullName}: {e.Message}\n{e.StackTrace}");
    Console.Out.WriteLine($"ERROR {e.GetType().Name}");
    Console.Out.Flush();
    return 1;
}

namespace ShmIpc.TestHost
{
    internal static partial class Scenarios
    {
        private static readonly Dictionary<string, Func<string[], int>> s_scenarios = new(StringComparer.Ordinal);

        static Scenarios()
        {
            RegisterFoundation();
            RegisterPipe();
            RegisterQueue();
            RegisterPool();
            RegisterInterop();
            RegisterSharedPipe();
            RegisterSync();
            RegisterLarge();
            RegisterLoans();
            RegisterAcknowledged();
            RegisterJoinable();
            RegisterFence();
        }

        // Each area registers its scenarios in its own file (PipeScenarios.cs, QueueScenarios.cs, ...).
        static partial void RegisterPipe();

        static partial void RegisterQueue();

        static partial void RegisterPool();

        static partial void RegisterInterop();

        static partial void RegisterSharedPipe();
        static partial void RegisterSync();

        static partial void RegisterLarge();
        static partial void RegisterLoans();
        static partial void RegisterAcknowledged();
        static partial void RegisterJoinable();
        static partial void RegisterFence();

        internal static void Add(string name, Func<string[], int> scenario) => s_scenarios.Add(name, scenario);

        public static int Run(string name, string[] args) =>
            s_scenarios.TryGetValue(name, out Func<string[], int>? scenario)
                ? scenario(args)
                : throw new ArgumentException($"Unknown scenario '{name}'.");

        internal static void Say(string line)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }

        /// <summary>Blocks until the parent closes stdin or kills us.</summary>
        internal static void Hold() => Console.In.ReadToEnd();

        internal static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

        private static void RegisterFoundation()
        {
            // Posts semaphore <index> of raw segment <name> <count> times.
            Add("raw-post", a =>
            {
                using var segment = RawSegments.Open(a[0]);
                using var semaphore = segment.OpenSemaphore(Int(a[1]));
                Say("READY");
                for (int i = 0; i < Int(a[2]); i++)
                {
                    semaphore.Post();
                }

                Say("POSTED");
                return 0;
            });

            // Sets the flag of raw segment <name> and notifies its wait signal (semaphore 0).
            Add("raw-signal", a =>
            {
                using var segment = RawSegments.Open(a[0]);
                using var semaphore = segment.OpenSemaphore(0);
                var signal = RawSegments.Signal(segment, semaphore);
                Say("READY");
                _ = Console.In.ReadLine(); // "go"
                RawSegments.SetFlag(segment, 1);
                signal.Notify();
                Say("SIGNALLED");
                return 0;
            });

            // Waits on semaphore <index> for <ms>; prints WOKE or TIMEOUT.
            Add("raw-wait", a =>
            {
                using var segment = RawSegments.Open(a[0]);
                using var semaphore = segment.OpenSemaphore(Int(a[1]));
                Say("READY");
                Say(semaphore.Wait(TimeSpan.FromMilliseconds(Int(a[2]))) ? "WOKE" : "TIMEOUT");
                return 0;
            });

            // Opens raw segment <name> and holds it until killed.
            Add("raw-hold", a =>
            {
                using var segment = RawSegments.Open(a[0]);
                Say("READY");
                Hold();
                return 0;
            });

            // Creates raw segment <name> and holds it until killed (a crashed creator leaves it behind).
            Add("raw-create-hold", a =>
            {
                var segment = RawSegments.Create(a[0]);
                Say("READY");
                Hold();
                segment.Unlink();
                segment.Dispose();
                return 0;
            });
        }
    }
}
