namespace ShmIpc;

// The backend-neutral queue interface (issue 19): ShmQueue's own members implement it as they are.
public sealed partial class ShmQueue : IShmQueue;
