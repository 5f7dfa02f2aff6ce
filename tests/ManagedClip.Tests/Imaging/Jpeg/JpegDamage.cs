namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>Deterministic damage to a JPEG's compressed data, for tests that compare damaged decodes across runs.</summary>
internal static class JpegDamage
{
    /// <summary>
    /// A copy with 1–3 bytes of the entropy-coded data (after the first scan header, before the last two bytes)
    /// overwritten by pseudo-random values from <paramref name="seed"/>. Same bytes in, same bytes out, everywhere.
    /// </summary>
    public static byte[] Damage(byte[] jpeg, int seed)
    {
        var copy = (byte[])jpeg.Clone();
        var sos = JpegEditor.First(jpeg, 0xDA);
        int start = sos.Offset + sos.Size, end = jpeg.Length - 2;
        uint state = (uint)seed * 2654435761u + 12345;
        uint Next() => state = state * 1664525 + 1013904223;
        int count = 1 + (int)(Next() >> 30) % 3;
        for (int i = 0; i < count; i++)
        {
            int position = start + (int)((Next() >> 8) % (uint)(end - start));
            copy[position] = (byte)(Next() >> 24);
        }
        return copy;
    }
}
