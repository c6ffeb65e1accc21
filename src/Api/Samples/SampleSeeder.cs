using AlexNet.Api.Gallery;
using AlexNet.Api.Inference;
using AlexNet.Api.Serving;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Samples;

/// <summary>
/// With <c>Gallery:SeedSamples</c>, puts the sample images into an empty gallery once the first model is in service
/// (each under its class as label, through the same pipeline as an upload), so that a first visitor finds neighbours.
/// A gallery that holds anything is left alone; a model without features (no gallery) is skipped with a line.
/// </summary>
public sealed class SampleSeeder(ServingHost host, GalleryService gallery, InferencePipeline pipeline, SampleLibrary samples,
    IOptions<GalleryOptions> options, ILogger<SampleSeeder> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.SeedSamples) return;
        if (samples.All.Count == 0)
        {
            log.LogWarning("Gallery:SeedSamples is set but there are no sample images in {Folder} (Samples:Path).", samples.Folder);
            return;
        }
        while (host.Current is null)   // the first generation is published in the background (ModelLoader)
        {
            if (host.NotReadyReason is { } reason && reason.StartsWith("the start failed", StringComparison.Ordinal)) return;
            await Task.Delay(100, stoppingToken);
        }
        using var lease = host.Acquire();
        var generation = lease.Generation;
        if (!generation.Model.HasFeatures)
        {
            log.LogInformation("Gallery:SeedSamples: {Model} gives no features, so there is no gallery to seed.", generation.Model.FileName);
            return;
        }
        if (gallery.Count > 0) return;
        var images = samples.All.Select(s => File.ReadAllBytes(s.Path)).ToArray();
        var answers = await pipeline.AnalyzeAsync(generation, images, tenCrop: false, keepImage: true, client: "samples", stoppingToken);
        var rows = answers.Select((a, i) => gallery.Describe(a.Image!.Prepared, a.Image.Width, a.Image.Height, a.Sha256,
            samples.All[i].Label, $"sample {samples.All[i].Name}", generation.Fingerprint, a.Prediction.Features)).ToArray();
        if (gallery.Count > 0) return;   // someone added meanwhile: theirs stand alone
        gallery.Add(rows);
        log.LogInformation("Gallery:SeedSamples: added {Count} sample images to the empty gallery.", rows.Length);
    }
}
