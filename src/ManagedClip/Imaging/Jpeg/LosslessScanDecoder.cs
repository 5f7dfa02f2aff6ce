using System.Numerics;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// Lossless JPEG (T.81 Annex H, "process 14", SOF3 with Huffman coding): every sample is a prediction from its
/// reconstructed neighbours (Ra left, Rb above, Rc above-left) plus a Huffman-coded difference, modulo 2^16, then
/// shifted left by the point transform Pt. Follows the IJG lossless decoder as GDCM and libjpeg-turbo 3 carry it
/// (<c>jdlhuff.c</c>, <c>jdlossls.c</c>, <c>jddiffct.c</c>).
/// </summary>
/// <remarks>
/// The first row of a scan (and after each restart) predicts from the left only, its first sample from
/// 2^(P − Pt − 1); the first sample of every other row predicts from above. Restart intervals must be whole MCU
/// rows. After damaged data the rest of the segment decodes as differences of 0 from the first-row predictor
/// (mid-grey), as libjpeg-turbo does.
/// </remarks>
internal sealed class LosslessScanDecoder<T> where T : unmanaged, IBinaryInteger<T>
{
    private readonly JpegScan scan;
    private readonly JpegOutput<T> output;
    private readonly HuffmanTable[] tables;
    private readonly int predictor, pointTransform, initialPrediction;
    private readonly int mcusPerRow, mcuRows;
    private readonly int[][] differences;      // per scan component: [Vi, mcusPerRow · Hi]
    private readonly int[][] previousRow, currentRow; // per scan component: reconstructed samples (before Pt)
    private readonly bool[] firstRow;          // per scan component: next row uses the first-row predictors
    private readonly int restartRows;          // MCU rows per restart interval (0: no restarts)

    public LosslessScanDecoder(JpegFrame frame, JpegScan scan, JpegTables tables, JpegOutput<T> output)
    {
        this.scan = scan;
        this.output = output;
        if (scan.Ss is < 1 or > 7 || scan.Se != 0 || scan.Ah != 0 || scan.Al >= frame.Precision)
            throw new JpegException($"corrupt JPEG: invalid lossless scan (predictor {scan.Ss}, Se={scan.Se}, Ah={scan.Ah}, point transform {scan.Al})");
        predictor = scan.Ss;
        pointTransform = scan.Al;
        initialPrediction = 1 << (frame.Precision - scan.Al - 1);

        int n = scan.Components.Length;
        this.tables = new HuffmanTable[n];
        for (int i = 0; i < n; i++)
        {
            int id = scan.DcTables[i];
            var spec = id < 4 ? tables.Dc[id] : null;
            if (spec is null) throw new JpegException($"corrupt JPEG: a lossless scan uses Huffman table {id}, which no DHT segment defines");
            this.tables[i] = HuffmanTable.Build(spec, isDc: true, maxDcSymbol: 16);
        }

        var only = scan.Components[0];
        mcusPerRow = scan.Interleaved ? frame.McusPerRow : only.WidthInBlocks;
        mcuRows = scan.Interleaved ? frame.McuRows : only.HeightInBlocks;
        if (tables.RestartInterval % mcusPerRow != 0)
            throw new JpegException($"JPEG lossless restart interval of {tables.RestartInterval} MCUs is not a whole number of rows of {mcusPerRow} MCUs");
        restartRows = tables.RestartInterval / mcusPerRow;

        differences = new int[n][];
        previousRow = new int[n][];
        currentRow = new int[n][];
        firstRow = new bool[n];
        for (int i = 0; i < n; i++)
        {
            var c = scan.Components[i];
            int h = scan.Interleaved ? c.H : 1, v = scan.Interleaved ? c.V : 1;
            differences[i] = new int[v * mcusPerRow * h];
            previousRow[i] = new int[c.WidthInBlocks];
            currentRow[i] = new int[c.WidthInBlocks];
        }
        ResetPredictors();
    }

    private void ResetPredictors() => Array.Fill(firstRow, true);

    /// <summary>Decodes the whole scan into the output planes.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public void Decode(ref EntropyReader reader)
    {
        int rowsToGo = restartRows, nextRestart = 0;
        bool outOfData = false;
        for (int mcuRow = 0; mcuRow < mcuRows; mcuRow++)
        {
            if (restartRows > 0 && rowsToGo == 0)
            {
                reader.ReadRestartMarker(nextRestart);
                nextRestart = (nextRestart + 1) & 7;
                if (reader.Marker == 0) outOfData = false;
                ResetPredictors();
                rowsToGo = restartRows;
            }
            if (outOfData)
            {
                foreach (var d in differences) Array.Clear(d);
                ResetPredictors();
            }
            else
            {
                DecodeMcuRow(ref reader);
                if (reader.ReadPastData) outOfData = true;
            }
            Reconstruct(mcuRow);
            rowsToGo--;
        }
    }

    /// <summary>The differences of one MCU row, placed per component row (MCU: Hi × Vi samples of each component).</summary>
    private void DecodeMcuRow(ref EntropyReader reader)
    {
        var components = scan.Components;
        for (int mcu = 0; mcu < mcusPerRow; mcu++)
        {
            for (int i = 0; i < components.Length; i++)
            {
                int h = scan.Interleaved ? components[i].H : 1, v = scan.Interleaved ? components[i].V : 1;
                int rowLength = mcusPerRow * h;
                for (int y = 0; y < v; y++)
                {
                    for (int x = 0; x < h; x++)
                    {
                        int size = reader.DecodeSymbol(tables[i]);
                        int difference = size switch
                        {
                            0 => 0,
                            16 => 32768, // T.81 H.1.2.2: category 16 has no extra bits
                            _ => reader.ReceiveExtend(size),
                        };
                        differences[i][y * rowLength + mcu * h + x] = difference;
                    }
                }
            }
        }
    }

    /// <summary>Undoes the prediction for the component rows of MCU row <paramref name="mcuRow"/> and stores them, shifted by Pt.</summary>
    private void Reconstruct(int mcuRow)
    {
        var components = scan.Components;
        for (int i = 0; i < components.Length; i++)
        {
            var c = components[i];
            int v = scan.Interleaved ? c.V : 1, h = scan.Interleaved ? c.H : 1;
            int rowLength = mcusPerRow * h, width = c.WidthInBlocks;
            for (int y = 0; y < v; y++)
            {
                int row = mcuRow * v + y;
                if (row >= c.HeightInBlocks) break; // dummy rows below the image
                var diff = differences[i].AsSpan(y * rowLength, width);
                var above = previousRow[i];
                var current = currentRow[i];
                Undifference(diff, above, current, firstRow[i]);
                firstRow[i] = false;

                var target = output.Planes[c.Index].Row(row);
                for (int x = 0; x < width; x++) target[x] = T.CreateTruncating(current[x] << pointTransform);
                (previousRow[i], currentRow[i]) = (current, above);
            }
        }
    }

    /// <summary>
    /// One row: sample = (prediction + difference) mod 2^16, with prediction (T.81 Table H.1) from Ra (left),
    /// Rb (above) and Rc (above-left) by the scan's predictor.
    /// </summary>
    private void Undifference(ReadOnlySpan<int> diff, ReadOnlySpan<int> above, Span<int> current, bool first)
    {
        int width = current.Length;
        if (first)
        {
            int ra = (diff[0] + initialPrediction) & 0xFFFF;
            current[0] = ra;
            for (int x = 1; x < width; x++) current[x] = ra = (diff[x] + ra) & 0xFFFF;
            return;
        }
        int left = (diff[0] + above[0]) & 0xFFFF;
        current[0] = left;
        for (int x = 1; x < width; x++)
        {
            int ra = left, rb = above[x], rc = above[x - 1];
            int prediction = predictor switch
            {
                1 => ra,
                2 => rb,
                3 => rc,
                4 => ra + rb - rc,
                5 => ra + ((rb - rc) >> 1),
                6 => rb + ((ra - rc) >> 1),
                _ => (ra + rb) >> 1,
            };
            current[x] = left = (diff[x] + prediction) & 0xFFFF;
        }
    }
}
