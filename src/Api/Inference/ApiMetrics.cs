using Prometheus;

namespace AlexNet.Api.Inference;

/// <summary>The service's own Prometheus metrics (HTTP metrics come from prometheus-net's middleware).</summary>
public static class ApiMetrics
{
    public static readonly Gauge Provider = Metrics.CreateGauge("alexnet_inference_provider",
        "1 for the ONNX Runtime execution provider that runs the model (CPU or CUDA), 0 otherwise.", "provider");
    public static readonly Gauge Ready = Metrics.CreateGauge("alexnet_ready", "1 when the model is loaded and warmed up.");
    public static readonly Counter Cache = Metrics.CreateCounter("alexnet_cache_requests_total",
        "Answer-cache lookups by result (hit, miss).", "result");
    public static readonly Histogram BatchSize = Metrics.CreateHistogram("alexnet_inference_batch_size",
        "Crops per ONNX Runtime call.", new HistogramConfiguration { Buckets = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
    public static readonly Histogram BatchSeconds = Metrics.CreateHistogram("alexnet_inference_batch_seconds",
        "Compute time: one ONNX Runtime call on a batch.", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
    public static readonly Histogram QueueSeconds = Metrics.CreateHistogram("alexnet_inference_queue_seconds",
        "Queue time: from a crop's arrival at the batcher to the start of its batch's ONNX Runtime call.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
    public static readonly Gauge QueueLength = Metrics.CreateGauge("alexnet_inference_queue_length", "Crops waiting for the model.");
    public static readonly Counter Rejected = Metrics.CreateCounter("alexnet_requests_rejected_total",
        "Requests refused before inference, by reason (queue_full, at_capacity, rate_limited).", "reason");
    public static readonly Gauge InFlight = Metrics.CreateGauge("alexnet_requests_in_flight",
        "Requests inside the upload endpoints (see Inference:MaxRequestsInFlight).");
    public static readonly Gauge GalleryImages = Metrics.CreateGauge("alexnet_gallery_images", "Images in the gallery index.");
    public static readonly Gauge GallerySequence = Metrics.CreateGauge("alexnet_gallery_sequence",
        "The last change of a shared gallery (PostgreSQL) this replica's index reflects (0 with SQLite).");
}
