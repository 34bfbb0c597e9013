using ShmIpc.Bench;

// ShmBench: "quick" is the README's demo; "child <role> <args>" is how the harness starts its peers.
return args.Length > 0 && args[0] == "child"
    ? ChildRoles.Run(args[1], args[2..])
    : Demo.Run(args);
