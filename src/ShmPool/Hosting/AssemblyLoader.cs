using System.Reflection;
using System.Runtime.Loader;

namespace ShmIpc.Hosting;

/// <summary>
/// Loads the user's assembly in a child process. The child runs with the parent application's deps.json,
/// so an assembly of the application loads by name like in the parent; one the parent loaded from
/// elsewhere (a plugin) loads from its path, with its own dependencies resolved beside it through
/// <see cref="AssemblyDependencyResolver"/> (which reads the plugin's .deps.json when it has one).
/// </summary>
internal static class AssemblyLoader
{
    private static readonly Lock s_lock = new();
    private static readonly Dictionary<string, AssemblyDependencyResolver?> s_resolvers = new(StringComparer.Ordinal);
    private static bool s_hooked;

    public static Assembly Load(string path, string fullName)
    {
        // The full name alone decides (it contains the simple name, version, culture and key that ReferenceMatchesDefinition
        // compares): no AssemblyName is built for each loaded assembly, which cost milliseconds of a worker's start.
        foreach (Assembly loaded in AssemblyLoadContext.Default.Assemblies)
        {
            if (string.Equals(loaded.FullName, fullName, StringComparison.Ordinal))
            {
                return loaded;
            }
        }

        // An assembly of the application (the child runs with its deps.json): by simple name, which binds to the very file the
        // parent's came from, as the full name would. The full name is not parsed: parsing its culture made the runtime load
        // ICU (3-5 ms of a worker's start, on the way to its first result). The caller checks the module's MVID either way.
        if (IsTrustedPlatformAssembly(path) && Path.GetFileNameWithoutExtension(path) is { Length: > 0 } simple
            && fullName.StartsWith(simple + ",", StringComparison.Ordinal))
        {
            return AssemblyLoadContext.Default.LoadFromAssemblyName(new AssemblyName { Name = simple });
        }

        var name = new AssemblyName(fullName);

        try
        {
            return AssemblyLoadContext.Default.LoadFromAssemblyName(name);
        }
        catch (FileNotFoundException)
        {
            // Not part of the application: load it from where the parent had it.
        }

        AddResolver(path);
        return AssemblyLoadContext.Default.LoadFromAssemblyPath(Path.GetFullPath(path));
    }

    /// <summary>Whether <paramref name="path"/> is one of the application's assemblies (the host's TRUSTED_PLATFORM_ASSEMBLIES list).</summary>
    private static bool IsTrustedPlatformAssembly(string path)
    {
        if (path.Length == 0 || AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is not string list)
        {
            return false;
        }

        for (int at = list.IndexOf(path, StringComparison.Ordinal); at >= 0; at = list.IndexOf(path, at + 1, StringComparison.Ordinal))
        {
            int end = at + path.Length;
            if ((at == 0 || list[at - 1] == Path.PathSeparator) && (end == list.Length || list[end] == Path.PathSeparator))
            {
                return true;
            }
        }

        return false;
    }

    private static void AddResolver(string path)
    {
        lock (s_lock)
        {
            if (!s_resolvers.ContainsKey(path))
            {
                AssemblyDependencyResolver? resolver;
                try
                {
                    resolver = new AssemblyDependencyResolver(path);
                }
                catch (InvalidOperationException)
                {
                    resolver = null; // no usable deps.json: probe the directory only
                }

                s_resolvers.Add(path, resolver);
            }

            if (!s_hooked)
            {
                s_hooked = true;
                AssemblyLoadContext.Default.Resolving += Resolve;
            }
        }
    }

    private static Assembly? Resolve(AssemblyLoadContext context, AssemblyName name)
    {
        KeyValuePair<string, AssemblyDependencyResolver?>[] resolvers;
        lock (s_lock)
        {
            resolvers = s_resolvers.ToArray();
        }

        foreach ((string path, AssemblyDependencyResolver? resolver) in resolvers)
        {
            string? candidate = resolver?.ResolveAssemblyToPath(name);
            if (candidate is null)
            {
                string beside = Path.Combine(Path.GetDirectoryName(path) ?? ".", name.Name + ".dll");
                candidate = File.Exists(beside) ? beside : null;
            }

            if (candidate is not null)
            {
                return context.LoadFromAssemblyPath(candidate);
            }
        }

        return null;
    }
}
