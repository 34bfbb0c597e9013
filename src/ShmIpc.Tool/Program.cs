using ShmIpc.Tool.Cli;

// shmipc: see Cli/ToolCommands.cs for the commands and Inspection/ for what they read.
return new ToolCommands(Console.Out, Console.Error).Run(args);
