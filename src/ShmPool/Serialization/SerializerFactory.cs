namespace ShmIpc;

/// <summary>Names a serializer so a child can make the same one.</summary>
internal static class SerializerFactory
{
    /// <summary>The type name the child will load; checks in the parent that the child will be able to.</summary>
    public static string Describe(IShmObjectSerializer serializer, string paramName)
    {
        Type type = serializer.GetType();
        if (type == typeof(ShmMessagePackSerializer))
        {
            return type.AssemblyQualifiedName!;
        }

        if (type.GetConstructor(Type.EmptyTypes) is null || type.ContainsGenericParameters || string.IsNullOrEmpty(type.Assembly.Location))
        {
            throw new ArgumentException($"The serializer {type.FullName} cannot be recreated in a child process: it needs a public parameterless constructor " +
                "and must come from an assembly loaded from a file.", paramName);
        }

        return type.AssemblyQualifiedName!;
    }

    /// <summary>
    /// How the default serializer's assembly-qualified name starts (the version and key follow). A child tests the name it
    /// was sent against this rather than computing <see cref="Type.AssemblyQualifiedName"/>: formatting the assembly's
    /// name cost 5-9 ms of a worker's start on the way to Ready. The child runs this very ShmPool.dll, so the type and
    /// assembly names identify it; a test checks the prefix against the real name.
    /// </summary>
    internal const string DefaultSerializerNamePrefix = "ShmIpc.ShmMessagePackSerializer, ShmPool, ";

    public static IShmObjectSerializer Create(string typeName)
    {
        if (typeName.StartsWith(DefaultSerializerNamePrefix, StringComparison.Ordinal))
        {
            return ShmMessagePackSerializer.Instance;
        }

        Type type = Type.GetType(typeName, throwOnError: true)!;
        return (IShmObjectSerializer)Activator.CreateInstance(type)!;
    }
}
