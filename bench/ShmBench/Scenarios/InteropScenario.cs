using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>interop: C and Python peers on ShmIpc's layout (native-notes/LAYOUT.md). Nothing to measure yet.</summary>
internal sealed class InteropScenario : IScenario
{
    public string Name => "interop";

    public string Title => "Interop: C and Python peers on ShmIpc segments";

    public void Run(HarnessContext ctx)
    {
        // TODO(interop): a C peer (bench/native/) and a Python peer (bench/python/) that open a ShmIpc Queue by
        // its layout and exchange 64 B messages with a .NET process: shmipc.interop_c_64B_throughput, ...
        ctx.Note("interop: no figures yet (needs the Queue and the C/Python peers)");
    }
}
