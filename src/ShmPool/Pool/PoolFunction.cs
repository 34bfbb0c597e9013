namespace ShmIpc.Pool;

/// <summary>A function the pool has named with a small id, so chunks carry 4 bytes instead of its full identity.</summary>
internal sealed record PoolFunction(int Id, Hosting.TargetMethod Target, Type ArgumentType, Type ResultType, int ParameterCount);
