using System.Reflection;
using System.Text.Json;
using AlexNet.Model.Imaging;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace AlexNet.Api.Http;

/// <summary>Marks a handler that reads images itself (<see cref="Uploads"/>), so OpenAPI can describe the body.</summary>
public sealed record ImageUploadMetadata(bool Many, bool Labels);

/// <summary>An example answer for OpenAPI.</summary>
public sealed record ResponseExample(int Status, object Example);

public static class OpenApiConventions
{
    /// <summary>Swagger (OpenAPI 3) for the minimal-API endpoints, with their XML comments and the X-Api-Key scheme.</summary>
    public static IServiceCollection AddApiDocs(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        return services.AddSwaggerGen(c =>
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
    }

    /// <summary>/swagger/v1/swagger.json and Swagger UI at /swagger.</summary>
    public static WebApplication UseApiDocs(this WebApplication app)
    {
        app.Use((http, next) =>
        {
            if (http.Request.Path.StartsWithSegments("/swagger"))
            {
                // Swagger UI loads its own scripts and styles from here, sets inline style attributes and draws data:
                // images; nothing else, and it may not be framed (clickjacking of the Try-it-out buttons).
                var headers = http.Response.Headers;
                headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
                    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
                headers.XFrameOptions = "DENY";
                headers.XContentTypeOptions = "nosniff";
            }
            return next(http);
        });
        app.UseSwagger();
        app.UseSwaggerUI(c => c.DocumentTitle = "AlexNet inference");
        return app;
    }

    /// <summary>Documents the image body and the problems an upload can get.</summary>
    public static RouteHandlerBuilder AcceptsImages(this RouteHandlerBuilder builder, bool many, bool labels = false) => builder
        .WithMetadata(new ImageUploadMetadata(many, labels))
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
        .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

    public static RouteHandlerBuilder WithExample(this RouteHandlerBuilder builder, int status, object example) =>
        builder.WithMetadata(new ResponseExample(status, example));
}

/// <summary>
/// Fills in what minimal-API metadata can't say: the multipart form (file fields named <c>image</c>, with label and
/// note where the gallery takes them) and the raw image/* body, examples, the 429 every /api route can get, and the
/// X-Api-Key requirement on writes.
/// </summary>
public sealed class ApiOperationFilter(IOptions<JsonOptions> json) : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
        var upload = metadata.OfType<ImageUploadMetadata>().FirstOrDefault();
        if (upload is not null) operation.RequestBody = ImageBody(upload);
        foreach (var example in metadata.OfType<ResponseExample>())
            if (operation.Responses?.TryGetValue(example.Status.ToString(), out var response) == true &&
                response.Content?.TryGetValue("application/json", out var media) == true && media is OpenApiMediaType m)
                m.Example = JsonSerializer.SerializeToNode(example.Example, example.Example.GetType(), json.Value.SerializerOptions);
        if (context.ApiDescription.RelativePath?.StartsWith("api/", StringComparison.Ordinal) == true)
            Problem(operation, StatusCodes.Status429TooManyRequests, "Too many requests from this client; see Retry-After.");
        foreach (var (status, response) in operation.Responses ?? [])
        {
            if (response is not OpenApiResponse r) continue;
            if (status is "429" or "503")
                Header(r, "Retry-After", "Seconds to wait before trying again.", JsonSchemaType.Integer);
            if (status == "200" && upload is not null)
                Header(r, "X-Cache", "hit when every image was answered from the cache, else miss.", JsonSchemaType.String);
        }
        if (metadata.OfType<RequiresApiKey>().Any())
            operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("ApiKey", context.Document)] = [] }];
    }

    static OpenApiRequestBody ImageBody(ImageUploadMetadata upload)
    {
        var binary = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" };
        var form = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Required = new HashSet<string> { Uploads.Field },
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                [Uploads.Field] = upload.Many
                    ? new OpenApiSchema { Type = JsonSchemaType.Array, Items = binary, Description = "One or more images (JPEG, PNG, GIF, WebP)." }
                    : binary,
            },
        };
        if (upload.Labels)
            foreach (var field in new[] { "label", "note" })
            {
                var text = new OpenApiSchema { Type = JsonSchemaType.String };
                form.Properties[field] = upload.Many
                    ? new OpenApiSchema { Type = JsonSchemaType.Array, Items = text, Description = $"Optional {field}s, matched to the images by position." }
                    : new OpenApiSchema { Type = JsonSchemaType.String, Description = $"Optional {field}." };
            }
        var content = new Dictionary<string, IOpenApiMediaType> { ["multipart/form-data"] = new OpenApiMediaType { Schema = form } };
        foreach (var type in SafeImageDecoder.AcceptedMediaTypes) content[type] = new OpenApiMediaType { Schema = binary };
        return new OpenApiRequestBody
        {
            Required = true,
            Description = "A multipart form with file fields named `image`, or the raw bytes of one image." +
                (upload.Labels ? " With a raw body, `label` and `note` go in the query string." : ""),
            Content = content,
        };
    }

    static void Header(OpenApiResponse response, string name, string description, JsonSchemaType type)
    {
        response.Headers ??= new Dictionary<string, IOpenApiHeader>();
        response.Headers[name] = new OpenApiHeader { Description = description, Schema = new OpenApiSchema { Type = type } };
    }

    static void Problem(OpenApiOperation operation, int status, string description)
    {
        operation.Responses ??= [];
        operation.Responses.TryAdd(status.ToString(), new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, IOpenApiMediaType> { ["application/problem+json"] = new OpenApiMediaType() },
        });
    }
}

/// <summary>Lists /metrics, which prometheus-net maps outside the API explorer.</summary>
public sealed class MetricsDocumentFilter : IDocumentFilter
{
    public void Apply(OpenApiDocument document, DocumentFilterContext context)
    {
        document.Paths ??= [];
        document.Paths["/metrics"] = new OpenApiPathItem
        {
            Operations = new Dictionary<HttpMethod, OpenApiOperation>
            {
                [HttpMethod.Get] = new()
                {
                    OperationId = "Metrics",
                    Summary = "Prometheus metrics (text exposition format)",
                    Tags = new HashSet<OpenApiTagReference> { new("Health", document) },
                    Responses = new OpenApiResponses
                    {
                        ["200"] = new OpenApiResponse
                        {
                            Description = "alexnet_* (provider, readiness, cache, batches, queue, gallery) and http_* metrics.",
                            Content = new Dictionary<string, IOpenApiMediaType> { ["text/plain"] = new OpenApiMediaType() },
                        },
                    },
                },
            },
        };
    }
}
