namespace ShmIpc.Pool.Tests;

/// <summary>Arguments and results longer than a worker pipe's ring go through side segments (issue 17).</summary>
[TestClass]
public sealed class PoolLargeArgumentTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    /// <summary>Every byte of the argument plus one, so the result proves the worker saw the whole argument.</summary>
    public static byte[] AddOne(byte[] data)
    {
        byte[] result = new byte[data.Length];
        for (int i = 0; i < data.Length; i++)
        {
            result[i] = (byte)(data[i] + 1);
        }

        return result;
    }

    public static long Sum(byte[] data)
    {
        long sum = 0;
        foreach (byte b in data)
        {
            sum += b;
        }

        return sum;
    }

    public static byte[] Make(int length) => Pattern(length, 0);

    private static byte[] Pattern(int length, int offset)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i % 251) + offset);
        }

        return bytes;
    }

    [TestMethod]
    public void A_64_MiB_argument_and_result_go_through_Apply_whole()
    {
        ShmPool pool = NewPool(1);
        byte[] argument = Pattern(64 << 20, 0);
        byte[] result = pool.Apply(AddOne, argument, Deadline);
        Assert.AreEqual(argument.Length, result.Length);
        Assert.IsTrue(result.AsSpan().SequenceEqual(Pattern(64 << 20, 1)), "every byte of the result");
    }

    [TestMethod]
    public void Large_arguments_and_results_go_through_Map_beside_small_ones()
    {
        ShmPool pool = NewPool(2);
        int[] lengths = [0, 10, 3 << 20, 100, 5 << 20];
        long[] sums = pool.Map(Sum, lengths.Select(Make), chunkSize: 1);
        CollectionAssert.AreEqual(lengths.Select(static n => Sum(Make(n))).ToArray(), sums);
        byte[][] made = pool.Map(Make, lengths, chunkSize: 1);
        CollectionAssert.AreEqual(lengths, made.Select(static m => m.Length).ToArray());
        Assert.IsTrue(made[4].AsSpan().SequenceEqual(Make(5 << 20)));
    }
}
