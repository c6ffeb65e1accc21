namespace AlexNet.Training.Data;

/// <summary>
/// Deterministic seed mixing (SplitMix64). Not <see cref="HashCode"/>: its seed is random per process, which would
/// make a resumed run (a new process) see a different data order than the run it continues.
/// </summary>
public static class Seeds
{
    public static int Mix(params long[] parts)
    {
        ulong h = 0x9E3779B97F4A7C15;
        foreach (var p in parts)
        {
            h ^= (ulong)p;
            h += 0x9E3779B97F4A7C15;
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EB;
            h ^= h >> 31;
        }
        return (int)(h & 0x7FFFFFFF);
    }
}
