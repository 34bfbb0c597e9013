using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

[TestClass]
public sealed class SerializerTests
{
    [TestMethod]
    public void Nullable_value_types_get_a_built_in_serializer()
    {
        // GetDefault<int?>() threw ArgumentException (int? holds no references yet is not 'unmanaged'),
        // which made ShmQueue<int?>.Create fail and poisoned ShmConnection.Send<int?> for the process.
        IShmSerializer<int?>? serializer = ShmSerializers.GetDefault<int?>();
        Assert.IsNotNull(serializer);
        Assert.IsNull(ShmSerializers.GetDefault<KeyValuePair<string, int>?>(), "no default for a nullable of a type that holds references");

        using var queue = ShmQueue<int?>.Create(TestNames.Unique("q-nullable"));
        queue.Enqueue(42);
        queue.Enqueue(null);
        queue.Enqueue(0);
        Assert.AreEqual(42, queue.Dequeue());
        Assert.IsNull(queue.Dequeue());
        Assert.AreEqual(0, queue.Dequeue());
    }

    [TestMethod]
    public void Nullable_values_cross_a_pipe_and_bad_bytes_are_refused()
    {
        string name = TestNames.Unique("p-nullable");
        using ShmConnection a = ShmPipe.Create(name);
        using ShmConnection b = ShmPipe.Connect(name);
        a.Send<(int, double)?>((1, 2.5));
        a.Send<long?>(null);
        Assert.AreEqual((1, 2.5), b.Receive<(int, double)?>());
        Assert.IsNull(b.Receive<long?>());

        a.Send(new byte[] { 7, 1, 2 });
        Assert.ThrowsExactly<InvalidDataException>(() => b.Receive<long?>(), "marker 7 is neither null nor a value");
        a.Send(new byte[] { 1, 1, 2 });
        Assert.ThrowsExactly<InvalidDataException>(() => b.Receive<long?>(), "a value marker with 2 bytes is not a long");
    }
}
