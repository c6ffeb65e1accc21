namespace AlexNet.Model;

/// <summary>
/// Crash-safe file replacement: write a sibling temp file, flush it to the disk, rename it over the target, then
/// flush the folder. A reader sees the old file or the new one, never a torn one; a crash leaves at most a stray
/// "*.tmp-*" sibling, which the next write of that name removes.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        foreach (var stale in Directory.EnumerateFiles(dir, Path.GetFileName(full) + ".tmp-*"))
            TryDelete(stale);
        var tmp = $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            FlushDirectory(dir);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    static void FlushDirectory(string dir)
    {
        // fsync on the folder makes the rename itself durable (Linux). Not all platforms allow opening a folder.
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            using var handle = File.OpenHandle(dir, FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(handle);
        }
        catch (UnauthorizedAccessException) { }
        catch (IOException) { }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
