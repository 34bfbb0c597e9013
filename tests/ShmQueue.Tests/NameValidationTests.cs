using ShmIpc.Tests.Common;
using ShmIpc.Memory;

namespace ShmIpc.Tests;

[TestClass]
public sealed class NameValidationTests
{
    [TestMethod]
    [DataRow("q", DisplayName = "one character")]
    [DataRow("my-queue_1.v2", DisplayName = "all allowed characters")]
    [DataRow("A9", DisplayName = "upper case and digits")]
    public void Valid_names_are_accepted(string name) => ShmName.Validate(name);

    [TestMethod]
    public void Two_hundred_characters_are_accepted() => ShmName.Validate(new string('a', 200));

    [TestMethod]
    [DataRow("", "empty", DisplayName = "empty")]
    [DataRow("a/b", "'/'", DisplayName = "slash")]
    [DataRow("..", "dot", DisplayName = "dot-dot")]
    [DataRow(".hidden", "dot", DisplayName = "leading dot")]
    [DataRow("has space", "U+0020", DisplayName = "space")]
    [DataRow("nul\0byte", "U+0000", DisplayName = "NUL")]
    [DataRow("tab\tname", "U+0009", DisplayName = "tab")]
    [DataRow("ümlaut", "'ü'", DisplayName = "non-ASCII")]
    [DataRow("a:b", "':'", DisplayName = "colon")]
    public void Invalid_names_are_refused_with_the_rule(string name, string mentioned)
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => ShmName.Validate(name));
        StringAssert.Contains(e.Message, mentioned);
        Assert.AreEqual("name", e.ParamName);
    }

    [TestMethod]
    public void Too_long_names_are_refused()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => ShmName.Validate(new string('a', 201)));
        StringAssert.Contains(e.Message, "at most 200");
    }

    [TestMethod]
    public void Null_is_refused() => Assert.ThrowsExactly<ArgumentNullException>(() => ShmName.Validate(null!));

    [TestMethod]
    public void A_bad_name_touches_no_file()
    {
        string[] before = Directory.GetFiles("/dev/shm");
        Assert.ThrowsExactly<ArgumentException>(() => RawSegments.Create("bad/name"));
        CollectionAssert.AreEquivalent(before, Directory.GetFiles("/dev/shm"));
    }
}
