namespace ShmIpc.Memory;

/// <summary>The rules for names of queues, pipes and segments, checked before any file is touched.</summary>
internal static class ShmName
{
    /// <summary>Every ShmIpc object in /dev/shm starts with this, so ours are recognisable.</summary>
    public const string OsPrefix = "shmipc.";

    public const int MaxLength = 200;

    /// <summary>Throws <see cref="ArgumentException"/> naming the rule that <paramref name="name"/> breaks.</summary>
    public static void Validate(string name, string paramName = "name")
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        if (name.Length == 0)
        {
            throw new ArgumentException("A shared-memory name must not be empty: use 1 to 200 characters of [A-Za-z0-9._-].", paramName);
        }

        if (name.Length > MaxLength)
        {
            throw new ArgumentException($"A shared-memory name has at most {MaxLength} characters; '{name[..20]}...' has {name.Length}.", paramName);
        }

        if (name[0] == '.')
        {
            throw new ArgumentException($"A shared-memory name must not start with a dot ('{name}'): names map to files and dot-names are hidden or special ('.', '..').", paramName);
        }

        foreach (char c in name)
        {
            bool ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or '-';
            if (!ok)
            {
                string shown = char.IsControl(c) || char.IsWhiteSpace(c) ? $"U+{(int)c:X4}" : $"'{c}'";
                throw new ArgumentException($"A shared-memory name may contain only [A-Za-z0-9._-]; '{name.Replace("\0", "\\0", StringComparison.Ordinal)}' contains {shown}.", paramName);
            }
        }
    }

    public static string ToOsName(string name) => OsPrefix + name;

    public static string SemaphoreOsName(string segmentOsName, int index) => $"{segmentOsName}.s{index}";
}
