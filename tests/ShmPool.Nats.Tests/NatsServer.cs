using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ShmIpc.Nats.Tests;

/// <summary>
/// A nats-server with JetStream on a free loopback port and a temporary store directory, started for a test and
/// stopped (and its store removed) after it. <see cref="Restart"/> stops it gracefully (SIGTERM) and starts it again on
/// the same port and store, as an operator restarting the server would.
/// </summary>
internal sealed partial class NatsServer : IDisposable
{
    private readonly string _storeDirectory = Path.Combine(Path.GetTempPath(), $"shmipc-nats-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private Process? _process;

    private NatsServer(int port)
    {
        Port = port;
        Directory.CreateDirectory(_storeDirectory);
    }

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public int Pid => _process?.Id ?? 0;

    public static NatsServer Start()
    {
        var server = new NatsServer(FreePort());
        server.StartProcess();
        return server;
    }

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
        foreach (string arg in (string[])["-js", "-a", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-sd", _storeDirectory])
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
