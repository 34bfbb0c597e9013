using System.Reflection;
using System.Runtime.CompilerServices;

namespace ShmIpc.Hosting;

/// <summary>
/// A method as another process can find it: the path and identity of its assembly, the module's MVID
/// (so a rebuilt assembly is detected rather than a wrong method run) and the method's metadata token.
/// </summary>
/// <param name="AssemblyPath">Where the parent loaded the assembly from.</param>
/// <param name="AssemblyName">The assembly's full name.</param>
/// <param name="ModuleVersionId">The MVID of the method's module.</param>
/// <param name="MetadataToken">The method's metadata token in that module.</param>
/// <param name="DisplayName">"Type.Method", for messages and process names.</param>
internal sealed record TargetMethod(string AssemblyPath, string AssemblyName, Guid ModuleVersionId, int MetadataToken, string DisplayName)
{
    /// <summary>
    /// Checks that <paramref name="target"/> can run in another process and describes it. Accepted: a static method,
    /// or a lambda that captures nothing (the compiler makes it an instance method of a field-less <c>&lt;&gt;c</c> singleton).
    /// </summary>
    /// <exception cref="ArgumentException">A closure, an instance method, a dynamic method, or a method of a generic type.</exception>
    public static TargetMethod From(Delegate target, string paramName)
    {
        ArgumentNullException.ThrowIfNull(target, paramName);
        if (target.GetInvocationList().Length != 1)
        {
            throw new ArgumentException("The target is a multicast delegate; pass a single static method.", paramName);
        }

        MethodInfo method = target.Method;
        Type? declaring = method.DeclaringType;
        string shown = declaring is null ? method.Name : $"{declaring.FullName}.{method.Name}";
        if (declaring is null || method is System.Reflection.Emit.DynamicMethod || method.Module.Assembly.IsDynamic)
        {
            throw new ArgumentException($"The target '{shown}' was generated at run time (a dynamic method or an expression tree): another process cannot load it. " +
                "Pass a static method of a compiled assembly.", paramName);
        }

        if (!method.IsStatic)
        {
            if (IsCaptureFreeLambdaHolder(declaring))
            {
                // "x => x * 2": fine, the child makes its own <>c singleton.
            }
            else if (declaring.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false))
            {
                string captured = string.Join(", ", declaring
                    .GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                    .Select(static f => f.Name.EndsWith("__this", StringComparison.Ordinal) ? "this"
                        : f.Name.Contains("<>", StringComparison.Ordinal) ? "variables of an enclosing scope" : f.Name));
                throw new ArgumentException($"The target (a lambda or local function in {DescribeEnclosing(declaring, method)}) captures variables ({captured}): " +
                    "its captured state lives in this process only and cannot run in a child process. " +
                    "Make it a static method (or a 'static' lambda) and pass what it needs as the argument.", paramName);
            }
            else
            {
                throw new ArgumentException($"The target '{shown}' is an instance method: the object it belongs to lives in this process only. " +
                    "Make it a static method (or a 'static' lambda) and pass what it needs as the argument.", paramName);
            }
        }

        if (declaring.ContainsGenericParameters || declaring.IsGenericType || method.IsGenericMethod)
        {
            throw new ArgumentException($"The target '{shown}' is generic (or declared in a generic type, as lambdas inside generic methods are): " +
                "a child process finds the method by its metadata token, which names the open definition. Use a non-generic static method.", paramName);
        }

        string location = method.Module.Assembly.Location;
        if (string.IsNullOrEmpty(location))
        {
            throw new ArgumentException($"The assembly of '{shown}' was not loaded from a file (single-file app or loaded from bytes): a child process cannot load it.", paramName);
        }

        string display = IsCaptureFreeLambdaHolder(declaring) ? $"{declaring.DeclaringType?.Name}.{method.Name}" : $"{declaring.Name}.{method.Name}";
        return new TargetMethod(location, method.Module.Assembly.FullName ?? location, method.Module.ModuleVersionId, method.MetadataToken, display);
    }

    /// <summary>"Type.Method" of the method a compiler-generated lambda was written in.</summary>
    private static string DescribeEnclosing(Type generated, MethodInfo lambda)
    {
        string name = lambda.Name;
        int open = name.IndexOf('<', StringComparison.Ordinal);
        int close = name.IndexOf('>', StringComparison.Ordinal);
        string enclosingMethod = open >= 0 && close > open + 1 ? name[(open + 1)..close] : name;
        return $"{generated.DeclaringType?.Name ?? generated.Name}.{enclosingMethod}";
    }

    /// <summary>The compiler's <c>&lt;&gt;c</c> class: holds capture-free lambdas as instance methods of one field-less singleton.</summary>
    internal static bool IsCaptureFreeLambdaHolder(Type type) =>
        type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false)
        && type.Name.StartsWith("<>c", StringComparison.Ordinal)
        && !type.Name.StartsWith("<>c__DisplayClass", StringComparison.Ordinal)
        && type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Length == 0;

    /// <summary>In the child: loads the assembly, checks it is the one the parent had, finds the method.</summary>
    public ResolvedTarget Resolve()
    {
        Assembly assembly = AssemblyLoader.Load(AssemblyPath, AssemblyName);
        Module module = assembly.ManifestModule;
        if (module.ModuleVersionId != ModuleVersionId)
        {
            throw new InvalidOperationException($"The assembly '{AssemblyPath}' is not the build the parent runs (MVID {module.ModuleVersionId}, parent has {ModuleVersionId}): " +
                "was it rebuilt while the program ran?");
        }

        MethodBase? found = module.ResolveMethod(MetadataToken);
        if (found is not MethodInfo method)
        {
            throw new InvalidOperationException($"Method token 0x{MetadataToken:X8} of '{AssemblyPath}' is not a method ({DisplayName}).");
        }

        object? instance = null;
        if (!method.IsStatic)
        {
            Type holder = method.DeclaringType!;

            // The compiler keeps the singleton in the static field "<>9"; fall back to a fresh (field-less) instance.
            instance = holder.GetField("<>9", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(null)
                ?? RuntimeHelpers.GetUninitializedObject(holder);
        }

        return new ResolvedTarget(method, instance);
    }
}

/// <summary>A method found in the child, with the instance to call it on (only for capture-free lambdas).</summary>
/// <param name="Method">The method.</param>
/// <param name="Instance">Null for a static method.</param>
internal sealed record ResolvedTarget(MethodInfo Method, object? Instance)
{
    /// <summary>The type one argument message carries: the parameter's type, or a value tuple of the parameters' types.</summary>
    public Type ArgumentType { get; } = WireArgumentType(Method);

    /// <summary>The most parameters a target may have: a <c>ValueTuple</c> of seven carries them (an eighth would nest).</summary>
    public const int MaxParameters = 7;

    private static Type TupleType(int count) => count switch
    {
        2 => typeof(ValueTuple<,>),
        3 => typeof(ValueTuple<,,>),
        4 => typeof(ValueTuple<,,,>),
        5 => typeof(ValueTuple<,,,,>),
        6 => typeof(ValueTuple<,,,,,>),
        _ => typeof(ValueTuple<,,,,,,>),
    };

    /// <summary>
    /// The parameter's type for one parameter; <c>ValueTuple&lt;...&gt;</c> of them for two to seven; null for none, and for a
    /// method that takes a span (a <see cref="ShmSpanAction{T}"/> of ForEachChunk: its arguments never cross as one message).
    /// </summary>
    internal static Type? WireArgumentTypeOrNull(MethodInfo method)
    {
        // Loops, not LINQ: a worker runs this on its way to its first result, and System.Linq is an assembly it need not load.
        ParameterInfo[] parameters = method.GetParameters();
        var types = new Type[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
        {
            types[i] = parameters[i].ParameterType;
            if (types[i].IsByRefLike)
            {
                return null;
            }
        }

        return types.Length switch
        {
            0 => null,
            1 => types[0],
            <= MaxParameters => TupleType(types.Length).MakeGenericType(types),
            _ => throw new NotSupportedException($"{method.Name} has {types.Length} parameters; at most {MaxParameters} are supported."),
        };
    }

    private static Type WireArgumentType(MethodInfo method) => WireArgumentTypeOrNull(method) ?? typeof(object);

    /// <summary>Calls the method with the wire argument spread over its parameters; user exceptions come out unwrapped.</summary>
    public object? Invoke(object? argument)
    {
        int count = Method.GetParameters().Length;
        object?[]? arguments = count switch
        {
            0 => null,
            1 => [argument],
            _ => Spread((ITuple)argument!, count),
        };
        return Method.Invoke(Instance, BindingFlags.DoNotWrapExceptions, binder: null, arguments, culture: null);
    }

    private static object?[] Spread(ITuple tuple, int count)
    {
        object?[] values = new object?[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = tuple[i];
        }

        return values;
    }
}
