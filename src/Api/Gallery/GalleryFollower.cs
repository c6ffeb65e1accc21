using AlexNet.Api.Serving;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Gallery;

/// <summary>
/// With a shared store (PostgreSQL), keeps this replica's index following the store: it waits for a change
/// notification (LISTEN) or Gallery:PollIntervalMs, whichever comes first, then applies every change after the last
/// it applied (<see cref="GalleryService.CatchUp"/>) and embeds other replicas' adds that lack this model's vector
/// (<see cref="GalleryService.EmbedPending"/>). A lost connection or a server that is down marks the store degraded
/// (readiness) and is retried every poll interval; nothing is skipped, because the feed is read by sequence, not by
/// notification. Does nothing with SQLite.
/// </summary>
public sealed class GalleryFollower(GalleryService gallery, ServingHost host, IOptions<GalleryOptions> options, ILogger<GalleryFollower> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var poll = TimeSpan.FromMilliseconds(options.Value.PollIntervalMs);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!gallery.IsShared || host.Current is null)
                {
                    await Task.Delay(poll, stoppingToken);   // not loaded yet (the load reads everything), or one process
                    continue;
                }
                gallery.CatchUp();
                while (gallery.EmbedPending() && !stoppingToken.IsCancellationRequested) gallery.CatchUp();
                gallery.ReportStore(null);
                await gallery.WaitForChangeAsync(poll, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (GalleryStoreUnavailableException e)
            {
                gallery.ReportStore(e.Message);
                await Delay(poll, stoppingToken);
            }
            catch (Exception e)
            {
                log.LogError(e, "Gallery: following the shared store failed; retrying.");
                await Delay(poll, stoppingToken);
            }
        }
    }

    static async Task Delay(TimeSpan wait, CancellationToken ct)
    {
        try
        {
            await Task.Delay(wait, ct);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
