using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// Every scenario, in the order "full" runs them. To add one: write a class implementing
/// <see cref="IScenario"/> in this folder, add it here, declare its headline figures and goals in
/// <see cref="Catalog"/>, and add its peer roles to <see cref="Children.ChildRoles"/>.
/// </summary>
internal static class ScenarioRegistry
{
    public static readonly IScenario[] All =
    [
        new PipeScenario(),
        new QueueScenario(),
        new PoolScenario(),
        new StartScenario(),
        new IdleScenario(),
        new InteropScenario(),
        new SyncScenario(),
        new OversubscribedScenario(),
        new AsyncScenario(),
        new LargeMessageScenario(),
        new InPlaceScenario(),
        new LoanScenario(),
        new AcknowledgedScenario(),
        new NatsScenario(),
        new FenceScenario(),
        new QueueRingScenario(),
    ];

    public static IScenario? Find(string name) => All.FirstOrDefault(s => s.Name == name);
}
