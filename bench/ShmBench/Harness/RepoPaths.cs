namespace ShmIpc.Bench.Harness;

/// <summary>Where the repository's bench/ files are, found by walking up to ShmIpc.sln.</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>The repository root (the directory holding ShmIpc.sln); the current directory when none is found.</summary>
    public static string Root => s_root.Value;

    public static string Bench => Path.Combine(Root, "bench");

    public static string Native => Path.Combine(Bench, "native");

    public static string Python => Path.Combine(Bench, "python");

    public static string Results => Path.Combine(Bench, "results");

    private static string FindRoot()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "ShmIpc.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return Environment.CurrentDirectory;
    }
}
