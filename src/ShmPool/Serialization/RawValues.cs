using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ShmIpc.Protocol;

namespace ShmIpc;

/// <summary>
/// The pool's fast path for unmanaged arguments and results (numbers, enums, structs of them) under the
/// default serializer. <see cref="ShmMessagePackSerializer"/> writes such a value as its own bytes, so the
/// pool may write and read those bytes directly with the static type: no boxing, no type lookup, no
/// interface call, nothing allocated. The bytes on the wire are the same either way, so each side takes
/// the fast path on its own (a worker may use it while the parent does not, and the other way round).
/// </summary>
internal static class RawValues
{
    /// <summary>Values of <typeparamref name="T"/> cross as their bytes with <paramref name="serializer"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Applies<T>(IShmObjectSerializer serializer) => serializer is ShmMessagePackSerializer && IsRaw<T>();

    /// <summary>
    /// The types <see cref="ShmMessagePackSerializer"/> writes raw: value types without references. Not
    /// <see cref="Nullable{T}"/>, which it hands to MessagePack.
    /// </summary>
    /// <remarks>Computed once per type: <see cref="Nullable.GetUnderlyingType"/> is a reflection call, too slow for every Apply.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsRaw<T>() => RawType<T>.Is;

    private static class RawType<T>
    {
        public static readonly bool Is =
            typeof(T).IsValueType && !RuntimeHelpers.IsReferenceOrContainsReferences<T>() && Nullable.GetUnderlyingType(typeof(T)) is null;
    }

    /// <summary>Writes <paramref name="value"/> as a length-prefixed byte block, as the serializer would.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<T>(MessageWriter writer, T value)
    {
        int size = Unsafe.SizeOf<T>();
        writer.WriteInt32(size);
        Unsafe.WriteUnaligned(ref MemoryMarshal.GetReference(writer.GetSpan(size)), value);
        writer.Advance(size);
    }

    /// <summary>Reads a value written by <see cref="Write{T}"/> (or by the serializer).</summary>
    /// <exception cref="InvalidDataException">The block is not the size of a <typeparamref name="T"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Read<T>(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Unsafe.SizeOf<T>())
        {
            ThrowWrongSize(typeof(T), bytes.Length);
        }

        return Unsafe.ReadUnaligned<T>(ref MemoryMarshal.GetReference(bytes));
    }

    /// <summary>The bytes of <paramref name="values"/>, back to back (a chunk's argument block).</summary>
    public static ReadOnlySpan<byte> AsBytes<T>(ReadOnlySpan<T> values) =>
        MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(values)), values.Length * Unsafe.SizeOf<T>());

    /// <summary>Copies a block of <paramref name="destination"/>.Length values written back to back.</summary>
    /// <exception cref="InvalidDataException">The block does not hold exactly that many values.</exception>
    public static void CopyBlock<T>(ReadOnlySpan<byte> block, Span<T> destination)
    {
        if (block.Length != destination.Length * Unsafe.SizeOf<T>())
        {
            ThrowWrongSize(typeof(T), block.Length);
        }

        block.CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(destination)), block.Length));
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowWrongSize(Type type, int length) =>
        throw new InvalidDataException($"A {type.Name} has another size than the {length} bytes received.");
}

/// <summary>
/// A worker's typed call of a one-argument function whose argument and result are raw values
/// (<see cref="RawValues"/>): reads the argument, calls a typed delegate, writes the outcome.
/// </summary>
internal abstract class RawInvoker
{
    /// <summary>The invoker for <paramref name="method"/>, or null when the fast path does not apply.</summary>
    public static RawInvoker? For(System.Reflection.MethodInfo method, object? instance, IShmObjectSerializer serializer)
    {
        System.Reflection.ParameterInfo[] parameters = method.GetParameters();
        if (serializer is not ShmMessagePackSerializer || parameters.Length != 1)
        {
            return null;
        }

        Type argument = parameters[0].ParameterType;
        Type result = method.ReturnType;
        if (!IsPlainValueType(argument) || !IsPlainValueType(result))
        {
            return null;
        }

        RawInvoker invoker = Common(argument, result, method, instance)
            ?? (RawInvoker)Activator.CreateInstance(typeof(RawInvoker<,>).MakeGenericType(argument, result), method, instance)!;
        return invoker.Applies ? invoker : null;
    }

    /// <summary>
    /// The invokers of the commonest signatures, named here so that ReadyToRun compiles them into ShmPool.dll: a worker's
    /// first task of such a function runs precompiled code, where an instantiation made by reflection was compiled by the
    /// JIT on the way to the worker's first result (4-6 ms of it), after a MakeGenericType and an Activator call.
    /// </summary>
    private static RawInvoker? Common(Type argument, Type result, System.Reflection.MethodInfo method, object? instance)
    {
        if (argument != result)
        {
            return null;
        }

        return argument == typeof(int) ? new RawInvoker<int, int>(method, instance)
            : argument == typeof(long) ? new RawInvoker<long, long>(method, instance)
            : argument == typeof(double) ? new RawInvoker<double, double>(method, instance)
            : null;
    }

    private static bool IsPlainValueType(Type type) =>
        type.IsValueType && !type.IsByRef && !type.IsPointer && !type.IsByRefLike && !type.ContainsGenericParameters;

    protected abstract bool Applies { get; }

    /// <summary>Runs the function on the argument's bytes and appends "0, result bytes"; the function's exceptions propagate.</summary>
    public abstract void Run(ReadOnlySpan<byte> argument, MessageWriter writer);

    /// <summary>
    /// Runs the function on each of <paramref name="count"/> arguments in <paramref name="arguments"/> and appends
    /// the result size and the results block (a failed item's slot stays zero); the failures go to <paramref name="errors"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The block does not hold <paramref name="count"/> arguments.</exception>
    public abstract void RunBlock(ReadOnlySpan<byte> arguments, int count, MessageWriter writer, List<RawItemError> errors);

    /// <summary>The bytes of one result.</summary>
    public abstract int ResultSize { get; }

    /// <summary>
    /// Runs the function on each of <paramref name="count"/> arguments in <paramref name="arguments"/>, the results into
    /// <paramref name="results"/> (<paramref name="count"/> × <see cref="ResultSize"/> bytes; a failed item's slot is
    /// zeroed); the failures go to <paramref name="errors"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The block does not hold <paramref name="count"/> arguments.</exception>
    public abstract void RunBlockInto(ReadOnlySpan<byte> arguments, int count, Span<byte> results, List<RawItemError> errors);
}

[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Made by reflection in RawInvoker.For.")]
internal sealed unsafe class RawInvoker<TArg, TResult> : RawInvoker
{
    private readonly Func<TArg, TResult> _function;

    /// <summary>
    /// The method's entry point, when it is a static method that needs no generic context (null otherwise): a block's items
    /// call it directly. Through the delegate a static method is called via the runtime's shuffle thunk (an open static
    /// delegate moves every argument down one register first), a dozen instructions per item more than the function's own.
    /// The entry point is the method's stable one: tiered compilation's later code is reached through it.
    /// </summary>
    private readonly delegate*<TArg, TResult> _static;

    public RawInvoker(System.Reflection.MethodInfo method, object? instance)
    {
        _function = method.CreateDelegate<Func<TArg, TResult>>(instance);
        if (method.IsStatic && !method.IsGenericMethod && method.DeclaringType is { IsGenericType: false }
            && method.GetParameters()[0].ParameterType == typeof(TArg) && method.ReturnType == typeof(TResult))
        {
            _static = (delegate*<TArg, TResult>)method.MethodHandle.GetFunctionPointer();
        }
    }

    protected override bool Applies => RawValues.IsRaw<TArg>() && RawValues.IsRaw<TResult>();

    public override void Run(ReadOnlySpan<byte> argument, MessageWriter writer)
    {
        TResult result = _function(RawValues.Read<TArg>(argument));
        writer.WriteByte(0);
        RawValues.Write(writer, result);
    }

    public override int ResultSize => Unsafe.SizeOf<TResult>();

    public override void RunBlock(ReadOnlySpan<byte> arguments, int count, MessageWriter writer, List<RawItemError> errors)
    {
        int resultSize = Unsafe.SizeOf<TResult>();
        if ((long)count * Unsafe.SizeOf<TArg>() != arguments.Length)
        {
            throw new InvalidDataException($"A block of {count} {typeof(TArg).Name} values has {arguments.Length} bytes.");
        }

        writer.WriteInt32(resultSize);
        int length = checked(count * resultSize);
        writer.WriteInt32(length);
        RunBlockInto(arguments, count, writer.GetSpan(length)[..length], errors);
        writer.Advance(length);
    }

    public override void RunBlockInto(ReadOnlySpan<byte> arguments, int count, Span<byte> results, List<RawItemError> errors)
    {
        int argumentSize = Unsafe.SizeOf<TArg>();
        int resultSize = Unsafe.SizeOf<TResult>();
        if ((long)count * argumentSize != arguments.Length || (long)count * resultSize != results.Length)
        {
            throw new InvalidDataException($"A block of {count} {typeof(TArg).Name} values has {arguments.Length} bytes.");
        }

        ref byte source = ref MemoryMarshal.GetReference(arguments);
        ref byte destination = ref MemoryMarshal.GetReference(results);
        int i = 0;
        while (i < count)
        {
            try
            {
                // One try for the whole run; after a failure the loop goes on from the next item.
                if (_static is not null)
                {
                    delegate*<TArg, TResult> function = _static;
                    for (; i < count; i++)
                    {
                        TResult result = function(Unsafe.ReadUnaligned<TArg>(ref Unsafe.Add(ref source, i * argumentSize)));
                        Unsafe.WriteUnaligned(ref Unsafe.Add(ref destination, i * resultSize), result);
                    }
                }
                else
                {
                    for (; i < count; i++)
                    {
                        TResult result = _function(Unsafe.ReadUnaligned<TArg>(ref Unsafe.Add(ref source, i * argumentSize)));
                        Unsafe.WriteUnaligned(ref Unsafe.Add(ref destination, i * resultSize), result);
                    }
                }
            }
#pragma warning disable CA1031 // The user's exception fails this item only.
            catch (Exception e)
#pragma warning restore CA1031
            {
                errors.Add(new RawItemError(i, e));
                results.Slice(i * resultSize, resultSize).Clear();
                i++;
            }
        }
    }
}

/// <summary>
/// An item of a raw block whose function threw. A class, not a value tuple: a List of it runs the runtime's precompiled
/// shared code, where a List of a value tuple was JIT-compiled on a worker's way to its first result.
/// </summary>
/// <param name="Index">The item's index in its block.</param>
/// <param name="Error">What the function threw.</param>
internal sealed record RawItemError(int Index, Exception Error);
