using System.Runtime.InteropServices;
using ShmIpc.Memory;

namespace ShmIpc.Internal;

/// <summary>
/// The contract between ShmQueue and the libraries built on it (ShmPool today; later backends): the few internals of
/// ShmQueue they may rely on, in one place. Anything else internal to ShmQueue is its own business and may change
/// without them noticing.
/// </summary>
/// <remarks>
/// What a library on top may rely on:
/// <list type="bullet">
/// <item>this class: process identity and liveness, signals to children and the parent-death signal (all through
///   <see cref="IProcessPlatform"/>, so no library above calls the OS itself), handing a pipe end to a child, the
///   borrowed receive of a pipe, and the prompt sweep after a child ended;</item>
/// <item><see cref="ProcessIdentity"/> (ShmIpc.Memory), a value: pid and start time, as children get it on their command line;</item>
/// <item><c>ShmIpc.Diagnostics.ShmMetrics</c> and <c>ShmTelemetry</c>: the instruments and activity source shared by every ShmIpc assembly.</item>
/// </list>
/// ShmQueue's InternalsVisibleTo lets ShmPool see more; ShmPool does not use more (its sources import only ShmIpc.Internal
/// and ShmIpc.Diagnostics from ShmQueue's internals, and name ProcessIdentity in one global alias).
/// </remarks>
internal static class ShmQueueContract
{
    /// <summary>This process, as its children name it.</summary>
    public static ProcessIdentity CurrentProcess => ProcessPlatform.Current.CurrentProcess;

    /// <summary>Whether <paramref name="process"/> still runs.</summary>
    public static bool IsAlive(ProcessIdentity process) => ProcessPlatform.Current.IsAlive(process);

    /// <summary>Ends process <paramref name="pid"/> at once (SIGKILL); false when it does not exist (any more).</summary>
    /// <exception cref="InvalidOperationException">The OS refused for another reason.</exception>
    public static bool Kill(int pid) => ProcessPlatform.Current.Signal(pid, ProcessSignal.Kill);

    /// <summary>Asks process <paramref name="pid"/> to end (SIGTERM); false when it does not exist (any more).</summary>
    /// <exception cref="InvalidOperationException">The OS refused for another reason.</exception>
    public static bool Terminate(int pid) => ProcessPlatform.Current.Signal(pid, ProcessSignal.Terminate);

    /// <summary>Asks the OS to signal this process when its parent ends; the signal to handle, or null when the OS cannot (then poll <see cref="IsAlive"/>).</summary>
    public static PosixSignal? RequestParentDeathSignal() => ProcessPlatform.Current.RequestParentDeathSignal();

    /// <summary>
    /// A child ended: the segments it created and nobody else maps (a queue it never disposed, because it was killed) are
    /// removed now rather than at the next periodic sweep.
    /// </summary>
    public static void ChildEnded() => StaleSweeper.Poke(force: true);

    /// <summary>
    /// This process is a child whose parent sweeps for it (it pokes the sweeper whenever a child ends, and sweeps
    /// periodically as any ShmIpc process does): the child's own creates and opens stop starting automatic sweeps. With
    /// hundreds of workers each listing <c>/dev/shm</c> on connect, that listing was the super-linear term of pool start.
    /// <see cref="ShmMaintenance.RemoveStaleSegments"/> still sweeps when asked.
    /// </summary>
    public static void LeaveSweepsToParent() => StaleSweeper.Disabled = true;

    /// <summary>Opens, in the receiving process, the pipe end another process handed over with <see cref="ShmConnection.Share"/>.</summary>
    public static ShmConnection AcquireHandover(string token) => ShmConnection.AcquireHandover(token);

    /// <summary>
    /// Receives the next message into <paramref name="buffer"/> if it fits; when it does not, leaves it in the pipe and returns
    /// false with its <paramref name="length"/> (so the caller can grow its buffer and call again). False with a length that
    /// fits means nothing came within <paramref name="timeout"/>.
    /// </summary>
    /// <exception cref="ShmPeerClosedException">The pipe is empty and the other end is gone.</exception>
    public static bool TryReceiveIntoOrMeasure(ShmConnection connection, Span<byte> buffer, out int length, TimeSpan timeout, ShmWaitStrategy? strategy) =>
        connection.TryReceiveIntoOrMeasure(buffer, out length, timeout, strategy);
}
