using System.Reflection;
using AlexNet.Api;
using AlexNet.Api.Endpoints;
using AlexNet.Api.Gallery;
using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Prometheus;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddApiOptions();
builder.Services.AddApiProblemDetails();   // details for bodiless 400, 404, 405, 500
builder.Services.AddApiRateLimiting();
builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<UploadOptions>>((kestrel, uploads) =>
{
    kestrel.AddServerHeader = false;
    kestrel.Limits.MaxRequestBodySize = uploads.Value.MaxRequestBytes;   // Kestrel's default is 30,000,000 bytes
    kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
});
builder.Services.AddOptions<FormOptions>().Configure<IOptions<UploadOptions>>((form, uploads) =>
{
    // Form parsing buffers every part before the handler runs, so its limits are the upload limits.
    form.MultipartBodyLengthLimit = uploads.Value.MaxRequestBytes;
    form.MemoryBufferThreshold = uploads.Value.MemoryBufferBytes;   // default 64 KB: a photo went through a temp file
    form.BufferBodyLengthLimit = uploads.Value.MaxRequestBytes;
    form.ValueCountLimit = 3 * uploads.Value.MaxImagesPerRequest + 8;   // images, labels, notes (default 1024)
    form.ValueLengthLimit = 4 * uploads.Value.MaxNoteLength + 1024;     // UTF-8 bytes of a label or note
    form.KeyLengthLimit = 256;
    form.MultipartHeadersCountLimit = 8;
    form.MultipartHeadersLengthLimit = 8 * 1024;
});

// One model, one session, one batcher per process. Hosted services start in this order, before Kestrel listens.
builder.Services.AddSingleton<ModelHost>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<ModelHost>());
builder.Services.AddSingleton<GalleryService>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<GalleryService>());
builder.Services.AddSingleton<InferenceBatcher>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<InferenceBatcher>());
builder.Services.AddSingleton<InferencePipeline>();
builder.Services.AddSingleton<ModelReloader>();   // POST /api/model/reload
builder.Services.AddSingleton<AdmissionControl>();   // 503 beyond Inference:MaxRequestsInFlight, before reading bodies

builder.Services.AddEndpointsApiExplorer();
builder.Services.AddSwaggerGen(c =>
{
    c.SwaggerDoc("v1", new OpenApiInfo
    {
        Title = "AlexNet inference",
        Version = "v1",
        Description = "Top-k classification, FC7 features and a nearest-neighbour image gallery on an exported AlexNet (ONNX Runtime). " +
            "Errors are application/problem+json. Gallery writes need the X-Api-Key header.",
    });
    c.AddSecurityDefinition("ApiKey", new OpenApiSecurityScheme
    {
        Type = SecuritySchemeType.ApiKey,
        In = ParameterLocation.Header,
        Name = ApiKeyFilter.Header,
        Description = "The server's Security:ApiKey. Without one configured, writes are refused.",
    });
    c.OperationFilter<ApiOperationFilter>();
    c.DocumentFilter<MetricsDocumentFilter>();
    c.IncludeXmlComments(Assembly.GetExecutingAssembly());
});

var app = builder.Build();
app.UseTrustedProxyHeaders(ProxyHeaders.Read(app.Configuration));   // first, so the rate limit sees the client's address
app.UseExceptionHandler();   // unexpected faults: a 500 problem, never a 404
app.UseStatusCodePages();    // bodiless errors (404, 405, binding failures): problem+json
app.UseDefaultFiles();       // "/" is wwwroot/index.html: the web page, which talks to this service only
app.UseStaticFiles(new StaticFileOptions
{
    OnPrepareResponse = c =>
    {
        // Unversioned file names: revalidate each time (the ETag makes that a 304). Scripts, styles, images and
        // fetches from this origin only; no inline script or style, no framing.
        c.Context.Response.Headers.CacheControl = "no-cache";
        c.Context.Response.Headers.ContentSecurityPolicy =
            "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
        c.Context.Response.Headers.XContentTypeOptions = "nosniff";
    },
});
app.UseRouting();
app.UseHttpMetrics();
app.UseRateLimiter();
app.UseSwagger();
app.UseSwaggerUI(c => c.DocumentTitle = "AlexNet inference");

var api = app.MapGroup("/api").RequireRateLimiting(RateLimiting.PerClient)
    // No cookies or ambient auth (writes need X-Api-Key), so no CSRF risk: no antiforgery (aspnet/Announcements#509).
    .DisableAntiforgery();
api.MapClassifyEndpoints();
api.MapGalleryEndpoints();
api.MapModelEndpoints();
app.MapHealthEndpoints();
app.MapMetrics();

app.Lifetime.ApplicationStarted.Register(() =>
{
    var addresses = app.Services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
    foreach (var address in addresses)
        app.Logger.LogInformation("Listening on {Address}: Swagger UI {Address}/swagger, readiness {Address}/health/ready, metrics {Address}/metrics.",
            address, address, address, address);
});
app.Run();

public partial class Program;
