using AlexNet.Api.Gallery;
using AlexNet.Api.Inference;
using AlexNet.Api.Samples;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Serving;

public static class ServingRegistration
{
    /// <summary>
    /// One generation (model + gallery index) in service at a time, one batcher, one analysis pipeline. Hosted
    /// services start in this order, before Kestrel listens: <see cref="ModelLoader"/> loads and checks the model and
    /// opens the gallery (warm-up and indexing go on in the background), then the batcher starts reading its queue.
    /// </summary>
    public static IServiceCollection AddServing(this IServiceCollection services)
    {
        services.AddSingleton<ServingHost>();
        services.AddSingleton<GalleryService>();
        services.AddHostedService<GalleryFollower>();   // a shared store's change feed (PostgreSQL); idle with SQLite
        services.AddSingleton<ModelLoader>();   // also POST /api/model/reload
        services.AddHostedService(sp => sp.GetRequiredService<ModelLoader>());
        services.AddSingleton(sp => new CoreScheduler(sp.GetRequiredService<IOptions<InferenceOptions>>().Value.MaxConcurrentDecodes));
        services.AddSingleton<InferenceBatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<InferenceBatcher>());
        services.AddSingleton<InferencePipeline>();
        services.AddSingleton<AdmissionControl>();   // 503 beyond Inference:MaxRequestsInFlight, before reading bodies
        // More models by name ("Models"), each with its own session, batcher and pipeline; started after the default one.
        services.AddOptions<List<Models.NamedModelOptions>>().BindConfiguration("Models");
        services.AddSingleton<Models.ModelRegistry>();
        services.AddHostedService<Models.NamedModelsService>();
        services.AddSingleton<Conv1Picture>();       // GET /api/model/conv1.png, drawn once per model file
        services.AddSingleton<SampleLibrary>();      // read at start (a bad manifest stops it), like the model
        services.AddHostedService<SampleSeeder>();   // Gallery:SeedSamples, after the first model is in service
        return services;
    }
}
