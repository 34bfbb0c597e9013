using System.Globalization;

namespace ShmIpc.Memory;

/// <summary>
/// Who owns a file in /dev/shm and with which permission bits, as <c>stat</c> reports them; with its inode (to tell
/// a file from another that took its name), its size, and whether it is a regular file at all.
/// </summary>
internal readonly record struct FileOwner(uint UserId, uint GroupId, UnixFileMode Mode, ulong Inode = 0, long Size = 0, bool IsRegularFile = true);

/// <summary>
/// Which other owners an opener accepts besides itself (the options' <c>TrustedUserId</c> and <c>TrustedGroupId</c>).
/// The default accepts only objects the opening user owns.
/// </summary>
internal readonly record struct OwnerTrust(int? UserId, int? GroupId)
{
    public static OwnerTrust OwnerOnly => default;
}

/// <summary>
/// The rule that keeps another local user from planting a segment or semaphore under a name we use: an
/// existing object is opened only when the opening user owns it, or when the options name its owner
/// (<c>TrustedUserId</c>) or its group (<c>TrustedGroupId</c>) explicitly; and never when anyone at all may
/// write it (world-writable), unless its owner is trusted explicitly. Root gets no exemption: root opening a
/// queue that user <c>nobody</c> made first is exactly the case this refuses.
/// </summary>
internal static class OwnerCheck
{
    /// <summary>Throws <see cref="UnauthorizedAccessException"/> when <paramref name="owner"/> is not acceptable for <paramref name="what"/>.</summary>
    public static void Demand(FileOwner owner, OwnerTrust trust, uint me, string what)
    {
        bool mine = owner.UserId == me;
        bool trustedUser = trust.UserId is int u && (uint)u == owner.UserId;
        bool trustedGroup = trust.GroupId is int g && (uint)g == owner.GroupId;
        string? why = null;
        if (!mine && !trustedUser && !trustedGroup)
        {
            why = $"it belongs to another user, so whoever made it first could read or forge what you send";
        }
        else if ((owner.Mode & UnixFileMode.OtherWrite) != 0 && !trustedUser)
        {
            why = "any local user may write it";
        }

        if (why is not null)
        {
            throw new UnauthorizedAccessException(
                $"{what} is owned by {Describe(owner)}: refused, because {why}. " +
                $"If that owner is meant to share it with you, name it in the options (TrustedUserId = {owner.UserId.ToString(CultureInfo.InvariantCulture)} " +
                $"or TrustedGroupId = {owner.GroupId.ToString(CultureInfo.InvariantCulture)}); otherwise choose another name.");
        }
    }

    /// <summary>"user nobody (uid 65534), group nogroup (gid 65534), mode 0666".</summary>
    public static string Describe(FileOwner owner) =>
        $"user {NameOf("/etc/passwd", owner.UserId)} (uid {owner.UserId.ToString(CultureInfo.InvariantCulture)}), " +
        $"group {NameOf("/etc/group", owner.GroupId)} (gid {owner.GroupId.ToString(CultureInfo.InvariantCulture)}), " +
        $"mode {Convert.ToString((int)owner.Mode & 0x1FF, 8).PadLeft(4, '0')}";

    /// <summary>The name of an id in a passwd-style file, or "?" (only on error paths: no caching needed).</summary>
    private static string NameOf(string file, uint id)
    {
        try
        {
            string wanted = id.ToString(CultureInfo.InvariantCulture);
            foreach (string line in File.ReadLines(file))
            {
                string[] fields = line.Split(':');
                if (fields.Length > 2 && fields[2] == wanted)
                {
                    return fields[0];
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return "?";
    }
}
