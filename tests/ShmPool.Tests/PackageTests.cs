using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// The path every user takes: pack the libraries into a local feed, make a fresh console app outside the
/// repository, add the packages from that feed, build it in Release and run it. The app's nuget.config lists the
/// local feed only: ShmIpc's dependencies come from the machine's package cache, which the suite's own build filled,
/// so the test needs no network.
/// </summary>
[TestClass]
[TestCategory("Package")]
public sealed class PackageTests
{
    private const string AppProgram = """
        using ShmIpc;

        string name = $"pkgq-{Environment.ProcessId}";
        using var queue = ShmQueue.Create(name);
        using (var producer = ShmProcess.Start(static (string n) =>
        {
            using var q = ShmQueue.Open(n);
            q.Enqueue("hello from a child"u8);
        }, name))
        {
            producer.Join();
        }

        Console.WriteLine("QUEUE " + System.Text.Encoding.UTF8.GetString(queue.Dequeue(TimeSpan.FromSeconds(10))));
        using var pool = new ShmPool(2);
        Console.WriteLine("MAP " + pool.Map(static (int x) => x * x, Enumerable.Range(0, 100)).Sum());
        using var child = ShmProcess.Start(static (int n) => n * 3, 14);
        Console.WriteLine("RESULT " + child.GetResult(TimeSpan.FromSeconds(30)));
        Console.WriteLine("PID " + Environment.ProcessId);
        """;

    [TestMethod]
    public void A_fresh_console_app_runs_on_the_packages_from_a_local_feed()
    {
        string root = RepositoryRoot();
        string work = Path.Combine(Path.GetTempPath(), $"shmipc-package-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string feed = Path.Combine(work, "feed");
        string app = Path.Combine(work, "app");
        string version = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        try
        {
            // The build this suite runs on is packed as it is (no rebuild under a running test host).
            foreach (string project in new[] { "src/ShmQueue/ShmQueue.csproj", "src/ShmPool/ShmPool.csproj" })
            {
                Dotnet(root, "pack", Path.Combine(root, project), "-c", "Release", "--no-build", "--disable-build-servers", $"-p:PackageVersion={version}", "-o", feed);
            }

            CollectionAssert.IsSubsetOf(
                new[] { $"ShmIpc.Queue.{version}.nupkg", $"ShmIpc.Queue.{version}.snupkg", $"ShmIpc.Pool.{version}.nupkg", $"ShmIpc.Pool.{version}.snupkg" },
                Directory.GetFiles(feed).Select(Path.GetFileName).ToArray());

            Dotnet(work, "new", "console", "-o", app, "--framework", "net10.0");
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="shmipc-local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            Dotnet(app, "add", "package", "ShmIpc.Pool", "--version", version);
            File.WriteAllText(Path.Combine(app, "Program.cs"), AppProgram);
            Dotnet(app, "build", "-c", "Release", "--disable-build-servers");

            string output = Dotnet(app, "bin/Release/net10.0/app.dll");
            StringAssert.Contains(output, "QUEUE hello from a child");
            StringAssert.Contains(output, "MAP 328350");
            StringAssert.Contains(output, "RESULT 42");
            string pid = output.Split('\n').Single(static l => l.StartsWith("PID ", StringComparison.Ordinal))["PID ".Length..].Trim();
            string[] left = Directory.GetFiles("/dev/shm", $"*pkgq-{pid}*").Concat(Directory.GetFiles("/dev/shm", $"*shmpool-{pid}-*")).ToArray();
            Assert.AreEqual(0, left.Length, "the app left: " + string.Join(", ", left));
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }

            // This run's packages in the machine's package cache: a test version is never used again.
            string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            foreach (string id in new[] { "shmipc.queue", "shmipc.pool" })
            {
                string folder = Path.Combine(cache, id, version);
                if (Directory.Exists(folder))
                {
                    Directory.Delete(folder, recursive: true);
                }
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "ShmIpc.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("ShmIpc.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Runs dotnet with <paramref name="args"/> in <paramref name="directory"/>; fails the test with its output when it fails.</summary>
    private static string Dotnet(string directory, params string[] args)
    {
        (int code, string stdout, string stderr) = ChildProcess.Run("dotnet", args, TimeSpan.FromMinutes(4), info =>
        {
            info.WorkingDirectory = Directory.Exists(directory) ? directory : Path.GetTempPath();

            // The test host runs under MSBuild's and the test platform's variables; a nested build must not inherit them.
            foreach (string key in info.Environment.Keys.Where(static k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)
                || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase) || k.Equals("DOTNET_HOST_PATH", StringComparison.OrdinalIgnoreCase)).ToList())
            {
                info.Environment.Remove(key);
            }

            info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            info.Environment["DOTNET_NOLOGO"] = "1";
        });
        string output = stdout + stderr;
        Assert.AreEqual(0, code, $"dotnet {string.Join(' ', args)} exited {code.ToString(CultureInfo.InvariantCulture)}:\n{output}");
        return output;
    }
}
