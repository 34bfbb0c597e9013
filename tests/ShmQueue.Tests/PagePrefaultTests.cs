using ShmIpc.Memory;

namespace ShmIpc.Tests;

[TestClass]
public sealed class PagePrefaultTests
{
    [TestMethod]
    public void Populating_an_array_s_pages_changes_none_of_its_bytes()
    {
        // Fresh (uninitialized) arrays, one written first and one not, of sizes around the page and the threshold: the
        // bytes read the same after the call, which only faults pages in.
        foreach (int length in new[] { PagePrefault.MinimumBytes - 1, PagePrefault.MinimumBytes, (4 << 20) + 4_093 })
        {
            byte[] written = GC.AllocateUninitializedArray<byte>(length);
            for (int i = 0; i < written.Length; i++)
            {
                written[i] = (byte)(i * 7);
            }

            PagePrefault.Populate(written);
            for (int i = 0; i < written.Length; i++)
            {
                Assert.AreEqual((byte)(i * 7), written[i], $"byte {i} of {length}");
            }

            byte[] zeroed = new byte[length];
            PagePrefault.Populate(zeroed);
            Assert.AreEqual(-1, zeroed.AsSpan().IndexOfAnyExcept((byte)0), $"a zeroed array of {length} stays zero");
            PagePrefault.Populate(zeroed.AsSpan(1, length - 2));
            Assert.AreEqual(-1, zeroed.AsSpan().IndexOfAnyExcept((byte)0), "a range that starts and ends inside pages");
        }
    }
}
