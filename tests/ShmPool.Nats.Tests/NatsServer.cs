using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ShmIpc.Nats.Tests;

/// <summary>
/// A nats-server with JetStream on a free loopback port and a temporary store directory, started for a test and
/// stopped (and its store removed) after it. <see cref="Restart"/> stops it gracefully (SIGTERM) and starts it again on
/// the same port and store, as an operator restarting the server would. <see cref="StartCluster"/> starts several
/// servers routed into one JetStream cluster. The bench links this file too (its <c>nats</c> scenario).
/// </summary>
internal sealed partial class NatsServer : IDisposable
{
    private readonly string _storeDirectory = Path.Combine(Path.GetTempPath(), $"shmipc-nats-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly string[] _clusterArgs;
    private Process? _process;

    private NatsServer(int port, string[] clusterArgs)
    {
        Port = port;
        _clusterArgs = clusterArgs;
        Directory.CreateDirectory(_storeDirectory);
    }

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public int Pid => _process?.Id ?? 0;

    public static NatsServer Start()
    {
        var server = new NatsServer(FreePort(), []);
        server.StartProcess();
        return server;
    }

    /// <summary>
    /// <paramref name="count"/> servers of one JetStream cluster on loopback ports (each its own client port, route
    /// port, server name and store), every one routed to all the others. Returns once each says it is ready; the
    /// JetStream meta leader may still be in election then (its API answers 503 until it is).
    /// </summary>
    public static NatsServer[] StartCluster(int count)
    {
        string cluster = $"c{Guid.NewGuid():N}"[..12];
        int[] routePorts = Enumerable.Range(0, count).Select(static _ => FreePort()).ToArray();
        string routes = string.Join(',', routePorts.Select(static p => $"nats://127.0.0.1:{p}"));
        var servers = new NatsServer[count];
        try
        {
            for (int i = 0; i < count; i++)
            {
                servers[i] = new NatsServer(FreePort(),
                    ["-n", $"{cluster}-{i}", "--cluster_name", cluster, "--cluster", $"nats://127.0.0.1:{routePorts[i]}", "--routes", routes]);
            }

            // Started together: each waits for its routes, and a JetStream cluster needs a quorum to say it is ready.
            Parallel.ForEach(servers, static s => s.StartProcess());
            return servers;
        }
        catch
        {
            foreach (NatsServer? server in servers)
            {
                server?.Dispose();
            }

            throw;
        }
    }

    /// <summary>The client URLs of <paramref name="servers"/>, comma-separated, as a pool or worker takes them.</summary>
    public static string Urls(IEnumerable<NatsServer> servers) => string.Join(',', servers.Select(static s => s.Url));

    /// <summary>A port nobody listens on now (the OS's choice for an ephemeral bind).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void StartProcess()
    {
        var info = new ProcessStartInfo("nats-server")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string arg in (string[])["-js", "-a", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-sd", _storeDirectory, .. _clusterArgs])
        {
            info.ArgumentList.Add(arg);
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("nats-server is not installed: ./test.sh installs it (apt-get install nats-server).", e);
        }

        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            log.Enqueue(e.Data);
            if (e.Data.Contains("Server is ready", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { log.Enqueue(e.Data); } };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _process = process;
        if (!ready.Task.Wait(TimeSpan.FromSeconds(30)))
        {
            process.Kill();
            throw new InvalidOperationException($"nats-server on port {Port} did not become ready in 30 s:{Environment.NewLine}{string.Join(Environment.NewLine, log)}");
        }
    }

    /// <summary>Stops the server as an operator would (SIGTERM: it finishes writing its store), waiting for it to exit.</summary>
    public void Stop()
    {
        if (_process is not { } process)
        {
            return;
        }

        if (!process.HasExited)
        {
            _ = Kill(process.Id, 15);
            if (!process.WaitForExit(TimeSpan.FromSeconds(15)))
            {
                process.Kill();
                process.WaitForExit(TimeSpan.FromSeconds(15));
            }
        }

        process.Dispose();
        _process = null;
    }

    /// <summary>Kills the server at once (SIGKILL: a crashed host), waiting for it to exit.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            _ = Kill(process.Id, 9);
            process.WaitForExit(TimeSpan.FromSeconds(15));
        }
    }

    /// <summary>Stops the server and starts it again on the same port and store.</summary>
    public void Restart()
    {
        Stop();
        StartProcess();
    }

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(_storeDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
