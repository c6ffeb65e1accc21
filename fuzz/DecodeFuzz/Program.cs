using AlexNet.Model;
using AlexNet.Model.Imaging;
using SharpFuzz;

// The upload path of the service and the training worker: hardened decode, then the paper's preprocessing.
// Any exception other than ImageRejectedException is a finding (the service would answer 500), and so is a hang.
// Created on first use: instrumented ImageSharp code may only run once Fuzzer.Run has set up AFL's shared memory.
ImagePreprocessor? prep = null;
SafeImageDecoder? decoder = null;

if (args.Length > 1 && args[0] == "--make-seeds")
{
    Seeds.Write(args[1]);
    return 0;
}

if (args.Length > 0 && args[0] == "--replay")
{
    // Replays files (regression corpus) outside AFL: exit 1 on the first unexpected exception.
    foreach (var file in args.Skip(1).SelectMany(a => Directory.Exists(a) ? Directory.GetFiles(a) : [a]))
    {
        try { Decode(File.ReadAllBytes(file)); }
        catch (Exception e) { Console.Error.WriteLine($"{file}: {e}"); return 1; }
    }
    return 0;
}

Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    Decode(ms.ToArray());
});
return 0;

void Decode(byte[] bytes)
{
    try
    {
        decoder ??= new SafeImageDecoder();
        prep ??= new ImagePreprocessor(AlexNetSpec.Compact());
        using var image = decoder.Decode(bytes);
        prep.CenterCrop(prep.Prepare(image));
    }
    catch (ImageRejectedException) { }   // the documented answer to a bad image: 415 or 422
}

static class Seeds
{
    public static void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        using var image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgba32>(12, 9);
        for (var y = 0; y < 9; y++)
            for (var x = 0; x < 12; x++) image[x, y] = new SixLabors.ImageSharp.PixelFormats.Rgba32((byte)(20 * x), (byte)(25 * y), 90, (byte)(x * y));
        foreach (var (name, save) in new (string, Action<Stream>)[]
                 {
                     ("a.png", s => SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, s)),
                     ("a.jpg", s => SixLabors.ImageSharp.ImageExtensions.SaveAsJpeg(image, s)),
                     ("a.gif", s => SixLabors.ImageSharp.ImageExtensions.SaveAsGif(image, s)),
                     ("a.webp", s => SixLabors.ImageSharp.ImageExtensions.SaveAsWebp(image, s)),
                 })
        {
            using var f = File.Create(Path.Combine(dir, name));
            save(f);
        }
    }
}
