using AlexNet.Api;
using AlexNet.Api.Endpoints;
using AlexNet.Api.Http;
using AlexNet.Api.Oip;
using AlexNet.Api.Serving;
using Prometheus;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddApiOptions();
builder.Services.AddApiProblemDetails();   // details for bodiless 400, 404, 405, 500
builder.Services.AddApiRateLimiting();
builder.Services.AddServerLimits();        // Kestrel and form limits from Uploads:*
builder.Services.AddServing();             // model + gallery index as one generation, batcher, pipeline
builder.Services.AddApiDocs();             // Swagger
builder.Services.QuietFailedStarts();      // one line instead of a stack trace (RunOrExplain)
builder.AddOpenInferenceProtocol();        // /v2 REST and gRPC on Grpc:Url (Oip/)

var app = builder.Build();
app.UseTrustedProxyHeaders(ProxyHeaders.Read(app.Configuration));   // first, so the rate limit sees the client's address
app.UseKnownMethodsOnly();   // 501 for made-up methods, before the metrics label them
app.UseExceptionHandler();   // unexpected faults: a 500 problem, never a 404
app.UseStatusCodePages();    // bodiless errors (404, 405, binding failures): problem+json
app.UseWebPage();
app.UseRouting();
app.UseHttpMetrics();
app.UseRateLimiter();
app.UseApiDocs();
app.MapApi();
app.MapOpenInferenceProtocol();
app.LogAddressesOnStart();
app.RunOrExplain();   // a start that fails for a fixable reason: one line and exit code 1

public partial class Program;
