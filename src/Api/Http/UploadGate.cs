using System.Threading.RateLimiting;
using AlexNet.Api.Inference;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Http;

/// <summary>
/// What an upload may hold before it is admitted to the model (<see cref="AdmissionControl"/>, which is entered only
/// once the body has arrived): at most Uploads:MaxUploadsPerClient uploads per client address at once (429 beyond),
/// and all uploads together at most Uploads:MaxBufferedBytes of body (memory and temp files; each reserves its
/// Content-Length, or Uploads:MaxRequestBytes when it declares none, until it is answered; 503 beyond). So slow or
/// stalled bodies from one address neither take every slot nor fill memory or disk; Kestrel's minimum data rate
/// (Server:MinBodyBytesPerSecond) and Uploads:BodyTimeoutSeconds end them.
/// <para>The work a client asks for is limited too: RateLimit:CropLimit crops per RateLimit:WindowSeconds per address
/// (<see cref="ChargeWork"/>), since one 16-image 10-crop request costs as much as 160 plain ones.</para>
/// </summary>
public sealed class UploadGate : IDisposable
{
    readonly UploadOptions _uploads;
    readonly InferenceOptions _inference;
    readonly RateLimitOptions _rate;
    readonly Lock _lock = new();
    readonly Dictionary<string, int> _perClient = [];
    readonly PartitionedRateLimiter<string> _work;
    long _buffered;

    public UploadGate(IOptions<UploadOptions> uploads, IOptions<InferenceOptions> inference, IOptions<RateLimitOptions> rate)
    {
        (_uploads, _inference, _rate) = (uploads.Value, inference.Value, rate.Value);
        _work = PartitionedRateLimiter.Create<string, string>(client => RateLimitPartition.GetFixedWindowLimiter(client,
            _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = _rate.Crops,
                Window = TimeSpan.FromSeconds(_rate.WindowSeconds),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
    }

    public static string Client(HttpContext http) => http.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    /// <summary>A place for one upload; dispose it when the request is answered. Throws a 429 or 503 refusal.</summary>
    public Permit Enter(HttpRequest request) =>
        Enter(request.HttpContext, Math.Min(request.ContentLength ?? _uploads.MaxRequestBytes, _uploads.MaxRequestBytes));

    /// <summary>A place for a request whose body is already in memory, <paramref name="bytes"/> long (a gRPC message).</summary>
    public Permit Enter(HttpContext http, long bytes)
    {
        var client = Client(http);
        lock (_lock)
        {
            var mine = _perClient.GetValueOrDefault(client);
            if (mine >= _uploads.MaxUploadsPerClient)
            {
                ApiMetrics.Rejected.WithLabels("client_uploads").Inc();
                throw RefusedException.TooMany($"This client has {mine} uploads in progress, the most one address may have " +
                    $"(Uploads:MaxUploadsPerClient). Wait for an answer before sending more.", _inference.RetryAfterSeconds);
            }
            if (_buffered + bytes > _uploads.MaxBufferedBytes)
            {
                ApiMetrics.Rejected.WithLabels("buffered_bytes").Inc();
                throw RefusedException.Overloaded($"The service is holding {_buffered:N0} bytes of uploads, near its limit of " +
                    $"{_uploads.MaxBufferedBytes:N0} (Uploads:MaxBufferedBytes). Retry after {_inference.RetryAfterSeconds} s.",
                    _inference.RetryAfterSeconds);
            }
            _perClient[client] = mine + 1;
            _buffered += bytes;
        }
        return new Permit(this, client, bytes);
    }

    void Leave(string client, long bytes)
    {
        lock (_lock)
        {
            _buffered -= bytes;
            if (--_perClient[client] == 0) _perClient.Remove(client);
        }
    }

    /// <summary>Counts <paramref name="crops"/> against the client's work limit; a 429 refusal when it is spent.</summary>
    public void ChargeWork(HttpContext http, int crops)
    {
        var limit = _rate.Crops;
        if (crops > limit)
            throw RefusedException.TooMany($"This request asks for {crops} crops; a client may ask for {limit} per " +
                $"{_rate.WindowSeconds} s (RateLimit:CropLimit). Send fewer images or no tenCrop.", _rate.WindowSeconds);
        using var lease = _work.AttemptAcquire(Client(http), crops);
        if (lease.IsAcquired) return;
        ApiMetrics.Rejected.WithLabels("work_limited").Inc();
        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : _rate.WindowSeconds;
        throw RefusedException.TooMany($"This client has used its {limit} crops per {_rate.WindowSeconds} s (RateLimit:CropLimit; " +
            $"an image is one crop, ten with tenCrop). Retry after {retryAfter} s.", retryAfter);
    }

    public void Dispose() => _work.Dispose();

    public sealed class Permit(UploadGate owner, string client, long bytes) : IDisposable
    {
        int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0) owner.Leave(client, bytes);
        }
    }
}
