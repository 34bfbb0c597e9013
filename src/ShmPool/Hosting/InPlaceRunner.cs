using System.Reflection;
using System.Runtime.InteropServices;
using ShmIpc.Protocol;

namespace ShmIpc.Hosting;

/// <summary>
/// A worker's side of MapInPlace and ForEachChunk: runs an <see cref="MessageKind.InPlaceChunk"/> on the shared arrays it
/// names, mapped once and kept (see <see cref="Open{T}"/>), and writes the <see cref="MessageKind.InPlaceResults"/> reply.
/// </summary>
internal sealed class InPlaceRunner
{
    /// <summary>
    /// Arrays kept mapped: a map call uses two, and a repeated call (the same array objects in the parent) finds them here.
    /// More are displaced, least recently used first, so arrays the parent removed do not stay mapped for long.
    /// </summary>
    private const int MappedArrays = 4;

    /// <summary>The arrays mapped, most recently used last, keyed by name and the parent's token for the array object.</summary>
    // A class, not a value tuple: List<class> runs the runtime's precompiled shared code, where a List of a value tuple was
    // JIT-compiled when a worker started (its constructor) and ran its first in-place task.
    private readonly List<MappedArray> _arrays = new();
    private readonly Dictionary<int, InPlaceInvoker> _invokers = new();

    /// <summary>Runs one in-place chunk; <paramref name="writer"/> gets the reply.</summary>
    public void Run(ref MessageReader reader, MessageWriter writer, IReadOnlyDictionary<int, ResolvedTarget> functions, IReadOnlyDictionary<int, Exception> unresolvable)
    {
        long chunkId = reader.ReadInt64();
        int functionId = reader.ReadInt32();
        var input = new ArrayRef(reader.ReadRequiredString(), reader.ReadInt64());
        string? outputName = reader.ReadString();
        long outputToken = reader.ReadInt64();
        ArrayRef? output = outputName is null ? null : new ArrayRef(outputName, outputToken);
        int start = reader.ReadInt32();
        int count = reader.ReadInt32();
        writer.Reset(MessageKind.InPlaceResults).WriteInt64(chunkId);
        int failedAt = start;
        try
        {
            InPlaceInvoker invoker = InvokerFor(functionId, functions, unresolvable);
            invoker.Run(this, input, output, start, count, ref failedAt);
            writer.WriteByte(0);
        }
#pragma warning disable CA1031 // The user's exception (or an array that cannot be opened) fails this chunk only.
        catch (Exception e)
#pragma warning restore CA1031
        {
            RemoteError error = RemoteError.From(e);
            writer.WriteByte(1);
            writer.WriteInt32(failedAt);
            writer.WriteError(error with { Message = $"{error.Message} (element {failedAt} of shared array '{input.Name}')" });
        }
    }

    private InPlaceInvoker InvokerFor(int functionId, IReadOnlyDictionary<int, ResolvedTarget> functions, IReadOnlyDictionary<int, Exception> unresolvable)
    {
        if (_invokers.TryGetValue(functionId, out InPlaceInvoker? known))
        {
            return known;
        }

        if (!functions.TryGetValue(functionId, out ResolvedTarget? target))
        {
            throw unresolvable.GetValueOrDefault(functionId) ?? new InvalidOperationException($"Function {functionId} was never defined.");
        }

        InPlaceInvoker invoker = InPlaceInvoker.For(target.Method, target.Instance);
        _invokers[functionId] = invoker;
        return invoker;
    }

    /// <summary>The array <paramref name="array"/> names, mapped now or found mapped.</summary>
    /// <exception cref="FileNotFoundException">It does not exist (any more).</exception>
    /// <exception cref="ShmInvalidSegmentException">Its elements are not of <typeparamref name="T"/>'s size.</exception>
    public ShmArray<T> Open<T>(ArrayRef array)
        where T : unmanaged
    {
        for (int i = _arrays.Count - 1; i >= 0; i--)
        {
            (string name, long token, IDisposable mapped) = _arrays[i];
            if (token == array.Token && name == array.Name)
            {
                if (mapped is ShmArray<T> typed)
                {
                    if (i != _arrays.Count - 1)
                    {
                        _arrays.RemoveAt(i);
                        _arrays.Add(new MappedArray(name, token, mapped));
                    }

                    return typed;
                }

                // The same array seen as another element type (a ForEachChunk over it as bytes, say): map it again as this one.
                mapped.Dispose();
                _arrays.RemoveAt(i);
                break;
            }
        }

        ShmArray<T> opened = ShmArray<T>.Open(array.Name);
        _arrays.Add(new MappedArray(array.Name, array.Token, opened));
        if (_arrays.Count > MappedArrays)
        {
            _arrays[0].Array.Dispose();
            _arrays.RemoveAt(0);
        }

        return opened;
    }
}

/// <summary>A shared array as an in-place chunk names it: its name, and the parent's token for the array object.</summary>
internal readonly record struct ArrayRef(string Name, long Token);

/// <summary>An array a worker keeps mapped (see InPlaceRunner): its name, token and mapping.</summary>
/// <param name="Name">The array's name.</param>
/// <param name="Token">The token that tells this array from an earlier one of the same name.</param>
/// <param name="Array">The mapping.</param>
internal sealed record MappedArray(string Name, long Token, IDisposable Array);

/// <summary>A worker's typed call of a MapInPlace function or ForEachChunk action, made once per function.</summary>
internal abstract class InPlaceInvoker
{
    /// <summary>
    /// The invoker of <paramref name="method"/>: <c>TOut f(TIn)</c> over unmanaged types (MapInPlace), or
    /// <c>void f(Span&lt;T&gt;, int)</c> (ForEachChunk).
    /// </summary>
    /// <exception cref="InvalidOperationException">The method has neither shape.</exception>
    public static InPlaceInvoker For(MethodInfo method, object? instance)
    {
        ParameterInfo[] parameters = method.GetParameters();
        try
        {
            if (parameters.Length == 1 && method.ReturnType != typeof(void))
            {
                Type type = typeof(MapInvoker<,>).MakeGenericType(parameters[0].ParameterType, method.ReturnType);
                return (InPlaceInvoker)Activator.CreateInstance(type, method, instance)!;
            }

            if (parameters.Length == 2 && method.ReturnType == typeof(void) && parameters[1].ParameterType == typeof(int)
                && parameters[0].ParameterType.IsGenericType && parameters[0].ParameterType.GetGenericTypeDefinition() == typeof(Span<>))
            {
                Type type = typeof(ForEachInvoker<>).MakeGenericType(parameters[0].ParameterType.GetGenericArguments()[0]);
                return (InPlaceInvoker)Activator.CreateInstance(type, method, instance)!;
            }
        }
        catch (ArgumentException e)
        {
            // A type that breaks the unmanaged constraint.
            throw new InvalidOperationException($"{method.Name} cannot run in place: {e.Message}", e);
        }

        throw new InvalidOperationException($"{method.Name} cannot run in place: MapInPlace takes TOut f(TIn), ForEachChunk void f(Span<T>, int).");
    }

    /// <summary>Runs elements [<paramref name="start"/>, +<paramref name="count"/>); on a throw, <paramref name="failedAt"/> is the element it failed at.</summary>
    public abstract void Run(InPlaceRunner arrays, ArrayRef input, ArrayRef? output, int start, int count, ref int failedAt);
}

[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Made by reflection in InPlaceInvoker.For.")]
internal sealed class MapInvoker<TIn, TOut> : InPlaceInvoker
    where TIn : unmanaged
    where TOut : unmanaged
{
    private readonly object? _instance;
    private readonly InPlaceLoop<TIn, TOut> _loop;

    public MapInvoker(MethodInfo method, object? instance)
    {
        _instance = instance;
        _loop = InPlaceLoopEmitter.Emit<TIn, TOut>(method);
    }

    public override void Run(InPlaceRunner arrays, ArrayRef input, ArrayRef? output, int start, int count, ref int failedAt)
    {
        Span<TIn> source = arrays.Open<TIn>(input).AsSpan(start, count);
        Span<TOut> destination = arrays.Open<TOut>(output ?? throw new InvalidDataException("A MapInPlace chunk names no output array.")).AsSpan(start, count);
        if (count == 0)
        {
            return;
        }

        int at = 0;
        try
        {
            _loop(_instance, ref MemoryMarshal.GetReference(source), ref MemoryMarshal.GetReference(destination), count, ref at);
        }
        catch
        {
            failedAt = start + at;
            throw;
        }
    }
}

[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Made by reflection in InPlaceInvoker.For.")]
internal sealed class ForEachInvoker<T> : InPlaceInvoker
    where T : unmanaged
{
    private readonly ShmSpanAction<T> _action;

    public ForEachInvoker(MethodInfo method, object? instance)
    {
        _action = method.CreateDelegate<ShmSpanAction<T>>(instance);
    }

    public override void Run(InPlaceRunner arrays, ArrayRef input, ArrayRef? output, int start, int count, ref int failedAt) =>
        _action(arrays.Open<T>(input).AsSpan(start, count), start);
}
