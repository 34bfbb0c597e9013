// The one ShmQueue type ShmPool names besides ShmIpc.Internal and ShmIpc.Diagnostics (see ShmQueueContract): a process's
// identity, pid and start time, as a child gets its parent's on its command line.
global using ProcessIdentity = ShmIpc.Memory.ProcessIdentity;
