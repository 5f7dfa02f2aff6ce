namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// One component of the frame header (SOF) and the geometry libjpeg derives from it (<c>jdinput.c</c>
/// <c>initial_setup</c>). A "block" is an 8×8 DCT block, or a single sample in a lossless frame.
/// </summary>
internal sealed class FrameComponent
{
    /// <summary>Position in the SOF (the output channel).</summary>
    public int Index;

    /// <summary>Component identifier Ci, which scans refer to.</summary>
    public int Id;

    /// <summary>Sampling factors Hi, Vi (1..4).</summary>
    public int H, V;

    /// <summary>Quantisation table selector Tqi.</summary>
    public int QuantTableId;

    /// <summary>Blocks that hold image samples: ceil(ceil(X·Hi/Hmax) / 8), likewise vertically.</summary>
    public int WidthInBlocks, HeightInBlocks;

    /// <summary>Blocks an interleaved scan codes: rounded up to whole MCUs (dummy blocks at the right and bottom).</summary>
    public int BlocksPerLine, BlockRows;

    /// <summary>Samples of this component: ceil(X·Hi/Hmax) × ceil(Y·Vi/Vmax).</summary>
    public int SampledWidth, SampledHeight;

    /// <summary>
    /// Dequantisation multipliers in natural order, latched from the table at the component's first scan (libjpeg
    /// <c>latch_quant_tables</c>); all zero until then.
    /// </summary>
    public readonly int[] Quant = new int[64];

    /// <summary>The latched table itself (natural order), null until the component's first scan.</summary>
    public ushort[]? QuantValues;

    /// <summary>True once <see cref="Quant"/> has been latched.</summary>
    public bool QuantLatched => QuantValues is not null;

    /// <summary>Frames read whole before output (progressive, several scans): [BlockRows, BlocksPerLine, 64].</summary>
    public short[]? Coefficients;

    /// <summary>Offset of block (column, row) in <see cref="Coefficients"/>.</summary>
    public int BlockOffset(int column, int row) => (row * BlocksPerLine + column) * 64;
}

/// <summary>The frame header (SOF) with the image geometry.</summary>
internal sealed class JpegFrame
{
    /// <summary>JPEG_MAX_DIMENSION of libjpeg: larger frames are refused ("a tad under 64K to prevent overflows").</summary>
    public const int MaxDimension = 65500;

    /// <summary>libjpeg's MAX_COMPONENTS.</summary>
    public const int MaxComponents = 10;

    public JpegFrame(int marker, int precision, int width, int height, FrameComponent[] components)
    {
        Marker = marker;
        Process = (marker & 3) switch
        {
            0 => marker == JpegMarker.Sof0 ? JpegProcess.Baseline : JpegProcess.ExtendedSequential,
            1 => JpegProcess.ExtendedSequential,
            2 => JpegProcess.Progressive,
            _ => JpegProcess.Lossless,
        };
        Arithmetic = marker >= JpegMarker.Sof0 + 9;
        Precision = precision;
        Width = width;
        Height = height;
        Components = components;
        foreach (var c in components)
        {
            MaxH = Math.Max(MaxH, c.H);
            MaxV = Math.Max(MaxV, c.V);
        }
        int block = BlockSize;
        McusPerRow = DivideRoundingUp(width, MaxH * block);
        McuRows = DivideRoundingUp(height, MaxV * block);
        foreach (var c in components)
        {
            c.SampledWidth = DivideRoundingUp((long)width * c.H, MaxH);
            c.SampledHeight = DivideRoundingUp((long)height * c.V, MaxV);
            c.WidthInBlocks = DivideRoundingUp((long)width * c.H, MaxH * block);
            c.HeightInBlocks = DivideRoundingUp((long)height * c.V, MaxV * block);
            c.BlocksPerLine = McusPerRow * c.H;
            c.BlockRows = McuRows * c.V;
        }
    }

    /// <summary>The SOF marker code (C0..CF).</summary>
    public int Marker { get; }

    public JpegProcess Process { get; }

    public bool Arithmetic { get; }

    /// <summary>Sample precision P in bits.</summary>
    public int Precision { get; }

    public int Width { get; }

    public int Height { get; }

    public FrameComponent[] Components { get; }

    /// <summary>Largest sampling factors: an interleaved MCU covers 8·Hmax × 8·Vmax pixels (Hmax × Vmax in lossless).</summary>
    public int MaxH { get; }

    public int MaxV { get; }

    /// <summary>Samples per block side: 8 for DCT frames, 1 for lossless ones.</summary>
    public int BlockSize => Process == JpegProcess.Lossless ? 1 : 8;

    /// <summary>MCUs in a row of an interleaved scan.</summary>
    public int McusPerRow { get; }

    /// <summary>Rows of interleaved MCUs ("iMCU rows"), which is also how the output is produced.</summary>
    public int McuRows { get; }

    public bool IsDct => Process != JpegProcess.Lossless;

    public static int DivideRoundingUp(long value, long divisor) => (int)((value + divisor - 1) / divisor);
}

/// <summary>A scan header (SOS): which components, their tables, and the spectral / approximation parameters.</summary>
internal sealed class JpegScan
{
    public required FrameComponent[] Components { get; init; }

    /// <summary>DC (or lossless) and AC entropy table selectors, per scan component.</summary>
    public required int[] DcTables { get; init; }

    public required int[] AcTables { get; init; }

    /// <summary>Spectral selection start (or the lossless predictor) and end.</summary>
    public int Ss { get; init; }

    public int Se { get; init; }

    /// <summary>Successive approximation high and low bit (Al is the point transform in lossless).</summary>
    public int Ah { get; init; }

    public int Al { get; init; }

    /// <summary>True for a scan of several components, coded MCU by MCU.</summary>
    public bool Interleaved => Components.Length > 1;
}
