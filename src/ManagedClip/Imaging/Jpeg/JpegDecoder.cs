using System.Numerics;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// A JPEG decoder that gives the pixels libjpeg-turbo 2.1.5 gives Pillow 9.4 (and so open_clip): baseline,
/// extended and progressive DCT with Huffman or arithmetic coding, any sampling factors libjpeg accepts, restart
/// markers, the accurate integer IDCT, fancy upsampling and libjpeg's fixed-point colour conversion. 12-bit DCT
/// and lossless (SOF3) frames decode too, for DICOM (<see cref="JpegColorOutput.Raw"/>).
/// </summary>
/// <remarks>
/// <para>The decode follows libjpeg's structure: markers are read up to the first scan; a frame with a single
/// scan of all components is decoded MCU row by MCU row straight to pixels (each component's samples kept in a
/// ring of three MCU rows, which fancy upsampling needs as context); any other frame (progressive, or one scan per
/// component) is read whole into per-component coefficient buffers first, then transformed and output the same
/// way. Lossless frames decode into whole sample planes.</para>
/// <para>Limits are checked before anything is allocated: the pixel count against the caller's limit, the
/// coefficient buffers against a few values per pixel of it, and the file's structure (a file that ends before
/// its end-of-image marker is "truncated", as Pillow reports).</para>
/// </remarks>
internal static class JpegDecoder
{
    /// <summary>Coefficient values per pixel of the limit that a multi-scan frame may buffer (4 components, 4:4:4, plus padding).</summary>
    private const long CoefficientsPerPixel = 5;

    /// <summary>Slack for tiny images whose whole-MCU padding dominates.</summary>
    private const long CoefficientSlack = 1 << 22;

    /// <summary>Decodes <paramref name="data"/> (named <paramref name="sourceName"/> in errors).</summary>
    /// <exception cref="InvalidDataException">Anything it cannot decode, as one line naming <paramref name="sourceName"/>.</exception>
    public static JpegImage Decode(ReadOnlySpan<byte> data, string sourceName, long maxPixels,
        JpegColorOutput output = JpegColorOutput.Pillow)
    {
        if (data.IsEmpty) throw InvalidImage.Error(sourceName, "the file is empty (0 bytes)");
        try
        {
            return new Decoding(maxPixels, output).Run(data);
        }
        catch (JpegException e)
        {
            throw InvalidImage.Error(sourceName, e.Message, e);
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or OverflowException)
        {
            // A decoder bug on damaged data must still read as a bad file, not as a crash; the fuzz tests look for these.
            throw InvalidImage.Error(sourceName, $"corrupt JPEG: the decoder failed on damaged data ({e.GetType().Name})", e);
        }
    }

    /// <summary>The state of one decode.</summary>
    private sealed class Decoding(long maxPixels, JpegColorOutput mode)
    {
        private readonly JpegTables tables = new();
        private JpegFrame? frame;
        private JpegColorSpace colorSpace;
        private int scansRead;
        private int[][]? coefficientBits; // progressive: [2 · components][64], see DctScanDecoder.StartProgressiveScan
        private int lastGoodMcuRow;       // progressive: rows of the final scan decoded before data ran out

        private JpegFrame Frame => frame!;

        public JpegImage Run(ReadOnlySpan<byte> data)
        {
            var reader = new JpegReader(data);
            reader.ReadStartOfImage();
            if (ReadMarkers(ref reader, header: true) != JpegMarker.Sos) throw new JpegException("JPEG has no image data (no scan)");
            var scan = ReadScanHeader(ref reader);
            bool singleScan = Frame.Process is not (JpegProcess.Progressive or JpegProcess.Lossless)
                && scan.Components.Length == Frame.Components.Length;
            colorSpace = JpegHeaders.ColorSpace(Frame, tables);
            CheckBeforeAllocating(data, reader.Position, singleScan);

            return Frame.Precision <= 8 ? Decode<byte>(data, ref reader, scan, singleScan) : Decode<ushort>(data, ref reader, scan, singleScan);
        }

        private JpegImage Decode<T>(ReadOnlySpan<byte> data, ref JpegReader reader, JpegScan scan, bool singleScan)
            where T : unmanaged, IBinaryInteger<T>
        {
            var frame = Frame;
            var output = new JpegOutput<T>(frame, colorSpace, mode, wholePlanes: frame.Process == JpegProcess.Lossless);
            if (frame.Process == JpegProcess.Lossless) DecodeLossless(data, ref reader, scan, output);
            else if (singleScan) DecodeSingleScan(data, ref reader, scan, output);
            else DecodeMultiScan(data, ref reader, scan, output);

            int channels = frame.Components.Length;
            return typeof(T) == typeof(byte)
                ? new JpegImage(frame.Width, frame.Height, channels, frame.Precision, (byte[])(object)output.Pixels, null, colorSpace, frame.Process, frame.Arithmetic)
                : new JpegImage(frame.Width, frame.Height, channels, frame.Precision, null, (ushort[])(object)output.Pixels, colorSpace, frame.Process, frame.Arithmetic);
        }

        // ---- markers ----

        /// <summary>
        /// Reads marker segments until a scan (SOS, its header not yet read) or the end of the image (EOI); returns which.
        /// In the <paramref name="header"/> (before the first scan) the frame header is read too.
        /// </summary>
        private int ReadMarkers(ref JpegReader reader, bool header)
        {
            while (true)
            {
                int marker = reader.NextMarker(header ? "before the first scan (SOS)" : "before the end-of-image marker (EOI)");
                switch (marker)
                {
                    case JpegMarker.Sos:
                        if (frame is null) throw new JpegException("corrupt JPEG: a scan (SOS) comes before the frame header (SOF)");
                        return marker;
                    case JpegMarker.Eoi:
                        if (!header) return marker;
                        if (frame is not null) throw new JpegException("JPEG has a frame header but no image data (EOI before any scan)");
                        // A tables-only datastream: libjpeg (and Pillow's loop around jpeg_read_header) goes on to
                        // the image that must follow at once, keeping the tables and resetting what SOI resets.
                        reader.Position = ExpectStartOfImage(reader);
                        ResetAtStartOfImage();
                        break;
                    case JpegMarker.Soi:
                        throw new JpegException("corrupt JPEG: a second start-of-image marker (SOI)");
                    case JpegMarker.Dqt:
                        tables.ReadQuantTables(reader.ReadSegment(marker, out bool bogus), bogus);
                        break;
                    case JpegMarker.Dht:
                        tables.ReadHuffmanTables(reader.ReadSegment(marker, out bogus), bogus);
                        break;
                    case JpegMarker.Dac:
                        tables.ReadArithmeticConditioning(reader.ReadSegment(marker, out bogus), bogus);
                        break;
                    case JpegMarker.Dri:
                        tables.ReadRestartInterval(reader.ReadSegment(marker, out bogus), bogus);
                        break;
                    case >= JpegMarker.App0 and <= JpegMarker.App15:
                        tables.ExamineApplicationSegment(marker, reader.ReadSegment(marker, out _));
                        break;
                    case JpegMarker.Com:
                    case JpegMarker.Dnl: // libjpeg skips DNL (a frame of height 0 was already refused)
                        reader.ReadSegment(marker, out _);
                        break;
                    case >= JpegMarker.Rst0 and <= JpegMarker.Rst7:
                    case JpegMarker.Tem:
                        break; // no parameters
                    case 0xC0 or 0xC1 or 0xC2 or 0xC3 or 0xC9 or 0xCA:
                        if (frame is not null) throw new JpegException("corrupt JPEG: a second frame header (SOF)");
                        frame = JpegHeaders.ReadFrame(marker, reader.ReadSegment(marker, out bogus), bogus);
                        break;
                    case 0xCB:
                        throw new JpegException("lossless JPEG with arithmetic coding (SOF11) is not supported");
                    case 0xC5 or 0xC6 or 0xC7 or 0xCD or 0xCE or 0xCF:
                        throw new JpegException($"hierarchical JPEG ({JpegMarker.Name(marker)}) is not supported (neither libjpeg nor Pillow decodes it)");
                    default:
                        throw new JpegException($"corrupt JPEG: unknown or reserved marker {JpegMarker.Name(marker)} at byte {reader.Position - 2}");
                }
            }
        }

        private static int ExpectStartOfImage(JpegReader reader)
        {
            var data = reader.Data;
            int p = reader.Position;
            if (data.Length - p < 2) throw JpegException.Truncated("after a tables-only datastream, before the image");
            if (data[p] != 0xFF || data[p + 1] != JpegMarker.Soi)
                throw new JpegException("JPEG holds only tables (EOI before any frame) and no image follows them");
            return p + 2;
        }

        private void ResetAtStartOfImage()
        {
            tables.RestartInterval = 0;
            tables.SawJfif = tables.SawAdobe = false;
            tables.AdobeTransform = 0;
            tables.DcLower.AsSpan().Clear();
            tables.DcUpper.AsSpan().Fill(1);
            tables.AcThreshold.AsSpan().Fill(5);
        }

        private JpegScan ReadScanHeader(ref JpegReader reader)
        {
            var scan = JpegHeaders.ReadScan(reader.ReadSegment(JpegMarker.Sos, out bool bogus), bogus, Frame);
            scansRead++;
            return scan;
        }

        // ---- limits ----

        private void CheckBeforeAllocating(ReadOnlySpan<byte> data, int scanData, bool singleScan)
        {
            var f = Frame;
            if (mode == JpegColorOutput.Pillow) CheckPillowCanOpen(f);

            long pixels = (long)f.Width * f.Height;
            if (pixels > maxPixels)
                throw new JpegException($"JPEG image of {f.Width}x{f.Height} = {pixels:N0} pixels exceeds the limit of {maxPixels:N0} pixels (refused before decoding)");
            if (pixels * f.Components.Length > Array.MaxLength)
                throw new JpegException($"JPEG image of {f.Width}x{f.Height} with {f.Components.Length} components is too large for one array");
            if (!singleScan && f.IsDct)
            {
                long coefficients = 0;
                foreach (var c in f.Components) coefficients += (long)c.BlocksPerLine * c.BlockRows * 64;
                if (coefficients > CoefficientsPerPixel * maxPixels + CoefficientSlack)
                    throw new JpegException($"JPEG needs {coefficients:N0} buffered coefficients for its {f.Components.Length} components (progressive or multi-scan), more than the pixel limit allows");
            }
            RequireEnd(data, scanData, singleScan);
        }

        private static void CheckPillowCanOpen(JpegFrame f)
        {
            if (f.Process == JpegProcess.Lossless)
                throw new JpegException("lossless JPEG (SOF3): Pillow 9.4, and so open_clip, cannot open it (lossless JPEG is read only inside DICOM)");
            if (f.Precision != 8)
                throw new JpegException($"{f.Precision}-bit JPEG: Pillow 9.4, and so open_clip, cannot open it (12-bit JPEG is read only inside DICOM)");
            if (f.Components.Length is not (1 or 3 or 4))
                throw new JpegException($"JPEG with {f.Components.Length} components: Pillow opens only 1 (L), 3 (RGB) or 4 (CMYK)");
        }

        /// <summary>
        /// Walks the rest of the file without decoding (every scan's data ends at a marker that is not RSTn) and
        /// refuses a file that ends early: before the first scan's data is complete when that is all there is to
        /// decode, else before the end-of-image marker — where libjpeg would wait for more data and Pillow reports
        /// "image file is truncated". Nothing large is allocated for such a file.
        /// </summary>
        private static void RequireEnd(ReadOnlySpan<byte> data, int scanData, bool singleScan)
        {
            var reader = new JpegReader(data) { Position = scanData };
            while (true)
            {
                int marker = reader.NextMarker(singleScan ? "inside the image data" : "before the end-of-image marker (EOI)");
                if (JpegMarker.IsRestart(marker) || marker is JpegMarker.Tem or JpegMarker.Soi) continue;
                if (singleScan || marker == JpegMarker.Eoi) return;
                // A marker with no segment the decoder knows: leave it to the decoder to name the problem.
                if (!HasSegment(marker)) return;
                reader.ReadSegment(marker, out _);
            }
        }

        private static bool HasSegment(int marker) =>
            marker is (>= JpegMarker.Sof0 and <= JpegMarker.Sof15) or JpegMarker.Sos or JpegMarker.Dqt or JpegMarker.Dnl
                or JpegMarker.Dri or (>= JpegMarker.App0 and <= JpegMarker.App15) or JpegMarker.Com;

        // ---- scans ----

        private void LatchQuantTables(JpegScan scan)
        {
            foreach (var c in scan.Components)
            {
                if (c.QuantLatched) continue;
                var table = c.QuantTableId < 4 ? tables.Quant[c.QuantTableId] : null;
                if (table is null)
                    throw new JpegException($"corrupt JPEG: component {c.Id} uses quantisation table {c.QuantTableId}, which no DQT segment defines");
                for (int i = 0; i < 64; i++) c.Quant[i] = IntegerIdct.Multiplier(table[i], Frame.Precision);
                c.QuantValues = (ushort[])table.Clone();
            }
        }

        private DctScanDecoder StartDctScan(JpegScan scan)
        {
            var f = Frame;
            LatchQuantTables(scan);
            if (f.Process == JpegProcess.Progressive)
            {
                coefficientBits ??= NewCoefficientBits(f.Components.Length);
                DctScanDecoder.StartProgressiveScan(scan, coefficientBits, f.Components.Length, firstScan: scansRead == 1);
            }
            if (f.Arithmetic) return new ArithmeticScanDecoder(scan, f, tables);
            if (f.Process != JpegProcess.Progressive) AddStandardHuffmanTables();
            return new HuffmanScanDecoder(scan, f, tables);
        }

        private static int[][] NewCoefficientBits(int components)
        {
            var bits = new int[2 * components][];
            for (int i = 0; i < bits.Length; i++)
            {
                bits[i] = new int[64];
                if (i < components) bits[i].AsSpan().Fill(-1);
            }
            return bits;
        }

        /// <summary>
        /// libjpeg-turbo gives sequential Huffman frames the standard tables of T.81 Annex K.3 for DC/AC table 0 and 1
        /// when the file defines none (Motion-JPEG frames omit them).
        /// </summary>
        private void AddStandardHuffmanTables()
        {
            for (int id = 0; id < 2; id++)
            {
                tables.Dc[id] ??= StandardHuffmanTables.Dc[id];
                tables.Ac[id] ??= StandardHuffmanTables.Ac[id];
            }
        }

        /// <summary>The MCU geometry of a scan: MCUs per row and MCU rows (a non-interleaved scan's MCU is one block).</summary>
        private (int McusPerRow, int McuRows) ScanGeometry(JpegScan scan)
        {
            if (scan.Interleaved) return (Frame.McusPerRow, Frame.McuRows);
            var c = scan.Components[0];
            return (c.WidthInBlocks, c.HeightInBlocks);
        }

        private McuBlocks NewMcuLayout(JpegScan scan)
        {
            int count = 0;
            foreach (var c in scan.Components) count += scan.Interleaved ? c.H * c.V : 1;
            if (count > McuBlocks.MaxBlocks)
                throw new JpegException($"JPEG scan has {count} blocks per MCU; libjpeg accepts at most {McuBlocks.MaxBlocks}");
            var blocks = new McuBlocks { Count = count };
            int b = 0;
            for (int i = 0; i < scan.Components.Length; i++)
            {
                int n = scan.Interleaved ? scan.Components[i].H * scan.Components[i].V : 1;
                for (int k = 0; k < n; k++) blocks.Member[b++] = i;
            }
            return blocks;
        }

        /// <summary>
        /// A frame with one scan of all components: decoded MCU row by MCU row, each block transformed as soon as it
        /// is decoded, and each iMCU row output once the next one (its context below) is decoded.
        /// </summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        private void DecodeSingleScan<T>(ReadOnlySpan<byte> data, ref JpegReader reader, JpegScan scan, JpegOutput<T> output)
            where T : unmanaged, IBinaryInteger<T>
        {
            var decoder = StartDctScan(scan);
            var blocks = NewMcuLayout(scan);
            var scratch = new short[blocks.Count * 64];
            for (int b = 0; b < blocks.Count; b++)
            {
                blocks.Arrays[b] = scratch;
                blocks.Offsets[b] = 64 * b;
            }
            // Where each block of the MCU lands: component, and block offsets within the MCU.
            var place = new (FrameComponent Component, int Dx, int Dy)[blocks.Count];
            for (int b = 0, i = 0; i < scan.Components.Length; i++)
            {
                var c = scan.Components[i];
                int h = scan.Interleaved ? c.H : 1, v = scan.Interleaved ? c.V : 1;
                for (int y = 0; y < v; y++)
                    for (int x = 0; x < h; x++) place[b++] = (c, x, y);
            }

            var (mcusPerRow, mcuRows) = ScanGeometry(scan);
            // A non-interleaved scan of the only component has V block rows per iMCU row.
            int mcuRowsPerOutputRow = scan.Interleaved ? 1 : scan.Components[0].V;
            var entropy = new EntropyReader(data, reader.Position);
            var restarts = new RestartSchedule(tables.RestartInterval);
            var rowOffsets = new int[blocks.Count]; // per MCU block: where its block row starts in the component's ring
            for (int mcuRow = 0; mcuRow < mcuRows; mcuRow++)
            {
                for (int b = 0; b < blocks.Count; b++)
                {
                    var (c, _, dy) = place[b];
                    int row = scan.Interleaved ? mcuRow * c.V + dy : mcuRow;
                    rowOffsets[b] = row < c.HeightInBlocks ? output.Planes[c.Index].RowOffset(8 * row) : -1; // −1: dummy row
                }
                for (int mcu = 0; mcu < mcusPerRow; mcu++)
                {
                    restarts.BeforeMcu(decoder, ref entropy);
                    Array.Clear(scratch);
                    decoder.DecodeMcu(ref entropy, blocks);
                    for (int b = 0; b < blocks.Count; b++)
                    {
                        var (c, dx, _) = place[b];
                        int column = scan.Interleaved ? mcu * c.H + dx : mcu;
                        if (column >= c.WidthInBlocks || rowOffsets[b] < 0) continue; // dummy block
                        Transform(scratch.AsSpan(64 * b, 64), c, output.Planes[c.Index], rowOffsets[b] + 8 * column);
                    }
                }
                bool lastRow = mcuRow == mcuRows - 1;
                if ((mcuRow + 1) % mcuRowsPerOutputRow == 0 || lastRow)
                {
                    int outputRow = mcuRow / mcuRowsPerOutputRow;
                    if (outputRow > 0) output.EmitMcuRow(outputRow - 1);
                    if (lastRow) output.EmitMcuRow(outputRow);
                }
            }

            // What follows the scan: libjpeg reads on to EOI (Pillow calls jpeg_finish_decompress). Another scan is
            // an error there; a file that simply ends is fine once every row has been output.
            reader.Position = entropy.MarkerOffsetAfterScan();
            try
            {
                if (ReadMarkers(ref reader, header: false) == JpegMarker.Sos)
                    throw new JpegException("corrupt JPEG: another scan follows the complete single-scan image (libjpeg expects EOI)");
            }
            catch (JpegException e) when (e.IsTruncation)
            {
                // Every pixel is decoded; only what came after the image data is cut off.
            }
        }

        /// <summary>Dequantises and inverse-transforms one block into the plane at sample offset <paramref name="offset"/>.</summary>
        private void Transform<T>(ReadOnlySpan<short> block, FrameComponent c, ComponentPlane<T> plane, int offset)
            where T : unmanaged, IBinaryInteger<T>
        {
            if (typeof(T) == typeof(byte))
                IntegerIdct.Transform8(block, c.Quant, ((byte[])(object)plane.Samples).AsSpan(offset), plane.Stride);
            else
                IntegerIdct.Transform16(block, c.Quant, Frame.Precision, ((ushort[])(object)plane.Samples).AsSpan(offset), plane.Stride);
        }

        /// <summary>Progressive frames and sequential frames with several scans: every scan into the coefficient buffers, then output.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        private void DecodeMultiScan<T>(ReadOnlySpan<byte> data, ref JpegReader reader, JpegScan scan, JpegOutput<T> output)
            where T : unmanaged, IBinaryInteger<T>
        {
            var f = Frame;
            foreach (var c in f.Components) c.Coefficients = new short[(long)c.BlocksPerLine * c.BlockRows * 64];
            while (true)
            {
                DecodeScanToCoefficients(data, ref reader, scan);
                if (ReadMarkers(ref reader, header: false) == JpegMarker.Eoi) break;
                scan = ReadScanHeader(ref reader);
            }

            var smoothing = BlockSmoothing.Create(f, coefficientBits, lastGoodMcuRow, scansRead);
            for (int mcuRow = 0; mcuRow < f.McuRows; mcuRow++)
            {
                foreach (var c in f.Components)
                {
                    var plane = output.Planes[c.Index];
                    // Real block rows in this iMCU row (fewer in the last one).
                    int blockRows = Math.Min(c.V, c.HeightInBlocks - mcuRow * c.V);
                    for (int v = 0; v < blockRows; v++)
                    {
                        int row = mcuRow * c.V + v;
                        var blocks = smoothing is null
                            ? c.Coefficients.AsSpan(c.BlockOffset(0, row), c.WidthInBlocks * 64)
                            : smoothing.SmoothRow(c, mcuRow, v, blockRows);
                        int rowOffset = plane.RowOffset(8 * row);
                        for (int column = 0; column < c.WidthInBlocks; column++)
                            Transform(blocks.Slice(64 * column, 64), c, plane, rowOffset + 8 * column);
                    }
                }
                if (mcuRow > 0) output.EmitMcuRow(mcuRow - 1);
            }
            output.EmitMcuRow(f.McuRows - 1);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        private void DecodeScanToCoefficients(ReadOnlySpan<byte> data, ref JpegReader reader, JpegScan scan)
        {
            var decoder = StartDctScan(scan);
            var blocks = NewMcuLayout(scan);
            for (int b = 0, i = 0; i < scan.Components.Length; i++)
            {
                int n = scan.Interleaved ? scan.Components[i].H * scan.Components[i].V : 1;
                for (int k = 0; k < n; k++) blocks.Arrays[b++] = scan.Components[i].Coefficients!;
            }
            var (mcusPerRow, mcuRows) = ScanGeometry(scan);
            // A non-interleaved scan has Vi block rows per iMCU row (libjpeg counts damage in iMCU rows).
            int mcuRowsPerOutputRow = scan.Interleaved ? 1 : scan.Components[0].V;
            var entropy = new EntropyReader(data, reader.Position);
            var restarts = new RestartSchedule(tables.RestartInterval);
            for (int mcuRow = 0; mcuRow < mcuRows; mcuRow++)
            {
                for (int mcu = 0; mcu < mcusPerRow; mcu++)
                {
                    // Before the restart, as libjpeg (the restart happens inside its decode_mcu).
                    if (!decoder.OutOfData) lastGoodMcuRow = mcuRow / mcuRowsPerOutputRow;
                    restarts.BeforeMcu(decoder, ref entropy);
                    int b = 0;
                    foreach (var c in scan.Components)
                    {
                        if (!scan.Interleaved)
                        {
                            blocks.Offsets[b++] = c.BlockOffset(mcu, mcuRow);
                            continue;
                        }
                        for (int y = 0; y < c.V; y++)
                            for (int x = 0; x < c.H; x++) blocks.Offsets[b++] = c.BlockOffset(mcu * c.H + x, mcuRow * c.V + y);
                    }
                    decoder.DecodeMcu(ref entropy, blocks);
                }
            }
            reader.Position = entropy.MarkerOffsetAfterScan();
        }

        /// <summary>Lossless frames: every scan straight into whole sample planes, then output.</summary>
        private void DecodeLossless<T>(ReadOnlySpan<byte> data, ref JpegReader reader, JpegScan scan, JpegOutput<T> output)
            where T : unmanaged, IBinaryInteger<T>
        {
            while (true)
            {
                var entropy = new EntropyReader(data, reader.Position);
                new LosslessScanDecoder<T>(Frame, scan, tables, output).Decode(ref entropy);
                reader.Position = entropy.MarkerOffsetAfterScan();
                if (ReadMarkers(ref reader, header: false) == JpegMarker.Eoi) break;
                scan = ReadScanHeader(ref reader);
            }
            output.EmitRows(0, Frame.Height);
        }
    }
}
