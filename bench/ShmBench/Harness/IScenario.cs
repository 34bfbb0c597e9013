namespace ShmIpc.Bench.Harness;

/// <summary>
/// One measured area ("pipe", "queue", ...): runs the ShmIpc side and, inside the same call, the
/// baselines it is compared against, recording every per-run value through
/// <see cref="HarnessContext.Latency"/>, <see cref="HarnessContext.Rate"/> or <see cref="HarnessContext.Record"/>.
/// Register a new one in <see cref="Scenarios.ScenarioRegistry"/>; declare its figures and goals in <see cref="Catalog"/>.
/// </summary>
internal interface IScenario
{
    /// <summary>The word on the command line: <c>full pipe</c>.</summary>
    string Name { get; }

    /// <summary>One line for the progress display and the results file.</summary>
    string Title { get; }

    /// <summary>Runs the scenario. A baseline whose tool is missing is skipped with a note, not an error.</summary>
    void Run(HarnessContext ctx);
}
