namespace ManagedClip.Retrieval;

/// <summary>
/// The k best (score, key) pairs seen, in a min-heap of size k: the worst kept pair is at the root, so a
/// candidate is compared with one number and most rows of a scan cost nothing more. Ties on score go to the
/// smaller key, so results do not depend on how the scan was split between threads. NaN scores never enter.
/// </summary>
internal sealed class TopK
{
    private readonly (float Score, long Key)[] heap;
    private int count;

    public TopK(int k) => heap = new (float, long)[k];

    public int Count => count;

    /// <summary>A score must beat this to enter once the heap is full (−∞ before).</summary>
    public float Threshold => count < heap.Length ? float.NegativeInfinity : heap[0].Score;

    /// <summary>True if (score, key) would enter; cheap enough to call for every row.</summary>
    public bool Admits(float score, long key)
    {
        if (float.IsNaN(score)) return false;
        if (count < heap.Length) return true;
        var worst = heap[0];
        return score > worst.Score || (score == worst.Score && key < worst.Key);
    }

    public void Add(float score, long key)
    {
        if (!Admits(score, key)) return;
        if (count < heap.Length)
        {
            heap[count] = (score, key);
            SiftUp(count++);
        }
        else
        {
            heap[0] = (score, key);
            SiftDown(0);
        }
    }

    /// <summary>The pairs, best first.</summary>
    public (float Score, long Key)[] Sorted()
    {
        var result = heap.AsSpan(0, count).ToArray();
        Array.Sort(result, (a, b) => Worse(a, b) ? 1 : Worse(b, a) ? -1 : 0);
        return result;
    }

    // a ranks below b: lower score, or the same score and a larger key.
    private static bool Worse((float Score, long Key) a, (float Score, long Key) b) =>
        a.Score < b.Score || (a.Score == b.Score && a.Key > b.Key);

    private void SiftUp(int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (!Worse(heap[i], heap[parent])) break;
            (heap[i], heap[parent]) = (heap[parent], heap[i]);
            i = parent;
        }
    }

    private void SiftDown(int i)
    {
        while (true)
        {
            int left = 2 * i + 1, right = left + 1, worst = i;
            if (left < count && Worse(heap[left], heap[worst])) worst = left;
            if (right < count && Worse(heap[right], heap[worst])) worst = right;
            if (worst == i) return;
            (heap[i], heap[worst]) = (heap[worst], heap[i]);
            i = worst;
        }
    }
}
