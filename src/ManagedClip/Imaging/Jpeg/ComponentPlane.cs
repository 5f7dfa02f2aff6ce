namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// The decoded samples of one component, as rows of <see cref="Stride"/> samples. For DCT frames a ring of three
/// iMCU rows (<see cref="BandRows"/> = 8·Vi sample rows each): the one being output plus its neighbours above and
/// below, which fancy upsampling reads. For lossless frames the whole plane (one band of all rows).
/// </summary>
internal sealed class ComponentPlane<T> where T : unmanaged
{
    public ComponentPlane(FrameComponent component, int bandRows, int bands, int stride)
    {
        Component = component;
        BandRows = bandRows;
        Bands = bands;
        Stride = stride;
        Samples = new T[(long)bandRows * bands * stride];
    }

    public FrameComponent Component { get; }

    /// <summary>Sample rows per band.</summary>
    public int BandRows { get; }

    /// <summary>Bands kept (3 for the ring, 1 for a whole plane).</summary>
    public int Bands { get; }

    /// <summary>Samples per row (whole blocks: at least the component's sampled width).</summary>
    public int Stride { get; }

    /// <summary>[Bands · BandRows, Stride].</summary>
    public T[] Samples { get; }

    /// <summary>Offset of sample row <paramref name="y"/> (of the whole component) in <see cref="Samples"/>.</summary>
    public int RowOffset(int y) => ((y / BandRows) % Bands * BandRows + y % BandRows) * Stride;

    /// <summary>Row <paramref name="y"/>, clamped to the component's real rows (libjpeg replicates the edge rows as context).</summary>
    public Span<T> Row(int y)
    {
        y = Math.Clamp(y, 0, Component.SampledHeight - 1);
        return Samples.AsSpan(RowOffset(y), Stride);
    }
}
