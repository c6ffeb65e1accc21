using System.ComponentModel.DataAnnotations;
using AlexNet.Api.Gallery;
using Microsoft.Extensions.Options;

namespace AlexNet.Api;

/// <summary>Which ONNX Runtime execution provider runs the model.</summary>
public enum ExecutionProvider
{
    /// <summary>CUDA when it starts, else the CPU (with a warning in the log).</summary>
    Auto,
    Cpu,
    /// <summary>CUDA or nothing: when CUDA does not start the service stays up but is not ready.</summary>
    Cuda,
}

public static class ExecutionProviders
{
    /// <summary>How logs, metrics and answers name the provider that runs a model (Cpu or Cuda): "CPU", "CUDA".</summary>
    public static string Label(this ExecutionProvider provider) => provider == ExecutionProvider.Cuda ? "CUDA" : "CPU";
}

/// <summary>The "Inference" section.</summary>
public sealed class InferenceOptions
{
    /// <summary>Relative paths resolve against the content root: src/Api under <c>dotnet run</c> (so this names the
    /// repository's models/), /app in the container image (so /models).</summary>
    [Required] public string ModelPath { get; set; } = "../../models/fashion-mnist-compact.onnx";
    /// <summary>A JSON <see cref="AlexNet.Model.ModelProfile"/> for a third-party ONNX file (its input name, channel
    /// order, pixel scale, mean and std, resize, output names, labels file). Empty: <c>name.profile.json</c> beside
    /// the model when present, else the model must follow OnnxContract. Relative paths resolve like ModelPath.</summary>
    public string? ProfilePath { get; set; }
    public ExecutionProvider Provider { get; set; } = ExecutionProvider.Auto;
    [Range(0, 63)] public int CudaDeviceId { get; set; }
    /// <summary>Crops per ONNX Runtime call. A 10-crop request is ten crops.</summary>
    [Range(1, 256)] public int MaxBatchSize { get; set; } = 16;
    /// <summary>How long a lone crop waits for company. 0 runs it at once (lowest latency); a few ms buys throughput under load.</summary>
    [Range(0, 1000)] public int MaxBatchDelayMs { get; set; }
    /// <summary>Crops waiting for the model; beyond this we answer 503, not queue.</summary>
    [Range(1, 100_000)] public int QueueCapacity { get; set; } = 256;
    /// <summary>Requests inside the upload endpoints at once (reading, waiting to decode, decoding, queued, running);
    /// beyond this we answer 503 before reading the body. 0: QueueCapacity + MaxBatchSize + decode slots.</summary>
    [Range(0, 100_000)] public int MaxRequestsInFlight { get; set; }
    /// <summary>Images decoded at once (decoding can't be cancelled, so it is bounded instead). 0: one per core.</summary>
    [Range(0, 1024)] public int MaxConcurrentDecodes { get; set; }
    /// <summary>ONNX Runtime's intra-op threads. 0: one per core.</summary>
    [Range(0, 1024)] public int IntraOpThreads { get; set; }
    /// <summary>Whether ONNX Runtime's threads busy-wait between parallel sections. Off: when the cores also decode
    /// uploads, spinning took their time (docs/benchmarks.md); on can help a machine that only runs the model.</summary>
    public bool IntraOpSpinning { get; set; }
    /// <summary>Seconds in the Retry-After header of a 503.</summary>
    [Range(1, 3600)] public int RetryAfterSeconds { get; set; } = 1;
}

/// <summary>The "Uploads" section: what one request may carry. Checked before anything is decoded.</summary>
public sealed class UploadOptions
{
    [Range(1, 1L << 30)] public long MaxImageBytes { get; set; } = 8 << 20;
    /// <summary>Also Kestrel's MaxRequestBodySize and the multipart body limit.</summary>
    [Range(1, 1L << 31)] public long MaxRequestBytes { get; set; } = 32 << 20;
    [Range(1, 256)] public int MaxImagesPerRequest { get; set; } = 16;
    /// <summary>A multipart upload is kept in memory up to this many bytes and spills to a temp file beyond. ASP.NET's
    /// 64 KB sent every photo through a file: at concurrency 16 that cost 1.3-1.6 ms of CPU an image and 8-10% of the
    /// throughput (docs/benchmarks.md). Memory held: at most this much per request in flight.</summary>
    [Range(0, 1 << 30)] public int MemoryBufferBytes { get; set; } = 1 << 20;
    /// <summary>Pixel budget of one decoded image (docs/security.md); over it the answer is 422.</summary>
    [Range(1, 65_535)] public int MaxSide { get; set; } = 8192;
    [Range(1, 1L << 32)] public long MaxPixels { get; set; } = 40_000_000;
    /// <summary>Longest one decode may take; past it the image is refused with 422. ImageSharp's JPEG decoder stops at
    /// it (between scans and rows of blocks); PNG, GIF and WebP decodes are bounded by the structural checks and the
    /// pixel budget instead (docs/security.md). A real 8192x4880 progressive JPEG took up to 2.2 s here.</summary>
    [Range(100, 600_000)] public int DecodeTimeoutMs { get; set; } = 5000;
    /// <summary>Longer side over shorter side. The shorter side is scaled to the model's resize size before the central
    /// crop, so an 8000x1 image would become 512,000x64 pixels (about 100 MB) for the compact model and 2,048,000x256
    /// (1.5 GB) for the paper's; over this ratio the answer is 422.</summary>
    [Range(1, 65_535)] public int MaxAspectRatio { get; set; } = 50;
    [Range(1, 10_000)] public int MaxLabelLength { get; set; } = 200;
    [Range(1, 100_000)] public int MaxNoteLength { get; set; } = 2000;
    /// <summary>Largest k for classification and search.</summary>
    [Range(1, 10_000)] public int MaxK { get; set; } = 100;
    /// <summary>Upload requests one client address may have in progress at once (reading the body, decoding, queued);
    /// beyond it the answer is 429 at once, so one address cannot hold every slot with slow bodies.</summary>
    [Range(1, 100_000)] public int MaxUploadsPerClient { get; set; } = 16;
    /// <summary>Bytes of request bodies the service holds at once, in memory and temp files together (each upload
    /// reserves its Content-Length, or MaxRequestBytes when it sends none, until it is answered); beyond it 503.</summary>
    [Range(1, 1L << 40)] public long MaxBufferedBytes { get; set; } = 512L << 20;
    /// <summary>Seconds a request body may take to arrive in full; past it the answer is 408.</summary>
    [Range(1, 3600)] public int BodyTimeoutSeconds { get; set; } = 60;
}

/// <summary>The "Server" section: Kestrel's connection limits (docs/security.md).</summary>
public sealed class ServerOptions
{
    /// <summary>Connections open at once. 0: a quarter of the process's open-file limit, at most 4,096 (every connection is a
    /// file descriptor; at the limit, accept and file opens fail and the runtime can abort). Beyond it new connections
    /// are closed at once.</summary>
    [Range(0, 1_000_000)] public int MaxConnections { get; set; }
    /// <summary>Connections one client address may hold open at once (connections from ForwardedHeaders:TrustedProxies
    /// are not counted: behind a proxy every client shares its address).</summary>
    [Range(1, 1_000_000)] public int MaxConnectionsPerClient { get; set; } = 64;
    /// <summary>An idle keep-alive connection is closed after this many seconds (Kestrel's default is 130).</summary>
    [Range(1, 3600)] public int KeepAliveTimeoutSeconds { get; set; } = 20;
    /// <summary>Seconds a client has to send a request's headers (Kestrel's default is 30).</summary>
    [Range(1, 3600)] public int RequestHeadersTimeoutSeconds { get; set; } = 10;
    /// <summary>Slowest body a client may send, after a grace period: below it the connection is cut (Kestrel's default
    /// is 240 bytes/s after 5 s).</summary>
    [Range(1, 1 << 30)] public int MinBodyBytesPerSecond { get; set; } = 8 * 1024;
    [Range(1, 3600)] public int MinBodyRateGraceSeconds { get; set; } = 3;
}

/// <summary>The "Gallery" section.</summary>
/// <summary>Where the gallery is kept.</summary>
public enum GalleryStoreKind
{
    /// <summary>A SQLite file (Gallery:DatabasePath): one process.</summary>
    Sqlite,
    /// <summary>PostgreSQL (ConnectionStrings:Gallery), shared by several replicas.</summary>
    Postgres,
}

public sealed class GalleryOptions
{
    /// <summary>Sqlite (one process, the default) or Postgres (several replicas share ConnectionStrings:Gallery).</summary>
    public GalleryStoreKind Store { get; set; } = GalleryStoreKind.Sqlite;
    /// <summary>Postgres: how often a replica reads the change feed even without a notification (a replica that missed
    /// one, or lost its listening connection, converges within this).</summary>
    [Range(50, 60_000)] public int PollIntervalMs { get; set; } = 1000;
    /// <summary>Postgres: how long a search with X-Gallery-Min-Sequence waits for this replica to reach that change
    /// before 503.</summary>
    [Range(0, 60_000)] public int MinSequenceWaitMs { get; set; } = 2000;
    /// <summary>SQLite file, created when missing. Relative paths resolve against the content root: the repository's
    /// data/ (git-ignored) under <c>dotnet run</c>.</summary>
    [Required] public string DatabasePath { get; set; } = "../../data/gallery.db";
    /// <summary>Most images the gallery holds; an add beyond it is refused (409) until images are deleted. The index
    /// keeps every vector in memory: FeatureDim x 4 bytes an image (16 KB for the paper's 4096-d FC7; 1.5x with
    /// Float16 storage, 1.25x with Int8), so the default bounds the paper model's index at about 1.6 GB.</summary>
    [Range(1, 100_000_000)] public int MaxImages { get; set; } = 100_000;
    /// <summary>Longest side of a thumbnail, in pixels.</summary>
    [Range(16, 1024)] public int ThumbnailSize { get; set; } = 96;
    /// <summary>What a search scans: Float32 (exact), or an fp16 or uint8 copy (half or a quarter of the bytes, so about
    /// 2x or 4x faster at large N) whose short list is re-ranked exactly from the fp32 vectors, which stay in memory
    /// (docs/benchmarks.md gives speed and recall@10).</summary>
    public VectorStorage SearchStorage { get; set; } = VectorStorage.Float32;
    /// <summary>With Float16 or Int8: RerankFactor x k candidates are re-ranked by their exact distance.</summary>
    [Range(1, 1000)] public int RerankFactor { get; set; } = 10;
    /// <summary>Threads one search scans with (each takes partitions of the rows as it comes free). 0: one per core.</summary>
    [Range(0, 1024)] public int SearchThreads { get; set; }
    /// <summary>Most searches answered by one pass over the index (searches that arrive while a pass runs share the
    /// next one: one read of the rows for all of them; answers are the same as alone). 1: each search alone.</summary>
    [Range(1, 256)] public int SearchBatchMax { get; set; } = 16;
    /// <summary>How long a pass waits for SearchBatchMax searches before it starts. 0: no wait, a pass takes the
    /// searches that queued while the previous one ran.</summary>
    [Range(0, 100)] public int SearchBatchDelayMs { get; set; }
    /// <summary>A gallery whose search scan reads fewer MiB than this is searched at once, not in shared passes: its rows
    /// come from cache, where a pass saves nothing and only makes searches wait (24: below a Zen 3 or Zen 4 CCD's 32 MiB
    /// L3; docs/benchmarks.md). 0: every search in passes.</summary>
    [Range(0, 1 << 20)] public int SearchAloneBelowMiB { get; set; } = 24;
    /// <summary>At start, an empty gallery gets the sample images (Samples:Path), each under its class as label. Off by
    /// default: a gallery is the operator's. TODO: with a shared PostgreSQL gallery, replicas that start together on an
    /// empty gallery may each add them (the emptiness check is per replica, not a transaction): set it on one replica.</summary>
    public bool SeedSamples { get; set; }
}

/// <summary>The "Samples" section: the sample images the page offers and Gallery:SeedSamples stores.</summary>
public sealed class SamplesOptions
{
    /// <summary>A folder with samples.json (<c>{"items": [{"file": "bag/bag-1.png", "label": "Bag"}]}</c>) and the PNGs it
    /// lists. Relative paths resolve like Inference:ModelPath (the repository's models/samples under <c>dotnet run</c>).
    /// A folder without samples.json: no samples.</summary>
    [Required] public string Path { get; set; } = "../../models/samples";
}

/// <summary>The "Cache" section: recent answers by image bytes, model and options.</summary>
public sealed class CacheOptions
{
    public bool Enabled { get; set; } = true;
    /// <summary>Bound on the cached probabilities and features (about 20 KB an image for the paper's model).</summary>
    [Range(1, 64 * 1024)] public int SizeLimitMegabytes { get; set; } = 64;
}

/// <summary>The "Security" section. No key configured means gallery writes are refused (secure by default).</summary>
public sealed class SecurityOptions
{
    /// <summary>Compared with the X-Api-Key header. Comes from the environment (Security__ApiKey), never from a file in git.</summary>
    public string? ApiKey { get; set; }
}

/// <summary>The "RateLimit" section: fixed windows per client address on /api, one counting requests and one counting
/// work (crops run through the model).</summary>
public sealed class RateLimitOptions
{
    [Range(1, 1_000_000)] public int PermitLimit { get; set; } = 300;
    [Range(1, 3600)] public int WindowSeconds { get; set; } = 60;
    /// <summary>Crops per window (an image is one crop, or ten with tenCrop; a gallery add or search is one an image).
    /// 0: ten times PermitLimit (3,000 a minute by default: on the demo model on two cores about 7% of the machine).
    /// One 16-image 10-crop request is 160 crops.</summary>
    [Range(0, 100_000_000)] public int CropLimit { get; set; }

    public int Crops => CropLimit > 0 ? CropLimit : (int)Math.Min(100_000_000L, 10L * PermitLimit);
}

/// <summary>Rules that span fields; messages name the keys.</summary>
public sealed class ValidateUploadOptions : IValidateOptions<UploadOptions>
{
    public ValidateOptionsResult Validate(string? name, UploadOptions o) =>
        o.MaxImageBytes > o.MaxRequestBytes
            ? ValidateOptionsResult.Fail($"Uploads:MaxImageBytes ({o.MaxImageBytes}) must not exceed Uploads:MaxRequestBytes ({o.MaxRequestBytes}).")
            : ValidateOptionsResult.Success;
}

public static class OptionsRegistration
{
    public static IServiceCollection AddApiOptions(this IServiceCollection services)
    {
        services.AddOptions<InferenceOptions>().BindConfiguration("Inference").ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<UploadOptions>().BindConfiguration("Uploads").ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<UploadOptions>, ValidateUploadOptions>();
        services.AddOptions<GalleryOptions>().BindConfiguration("Gallery").ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SamplesOptions>().BindConfiguration("Samples").ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<CacheOptions>().BindConfiguration("Cache").ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SecurityOptions>().BindConfiguration("Security");
        services.AddOptions<RateLimitOptions>().BindConfiguration("RateLimit").ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ServerOptions>().BindConfiguration("Server").ValidateDataAnnotations().ValidateOnStart();
        return services;
    }

    /// <summary>A configured path, absolute as given or relative to the content root.</summary>
    public static string Resolve(IHostEnvironment env, string path) =>
        Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(env.ContentRootPath, path));
}
