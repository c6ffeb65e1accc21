using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Text.Json;
using AlexNet.Api.Inference;
using AlexNet.Api.Oip;
using AlexNet.Api.Serving;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Models;

/// <summary>One entry of the "Models" list: a model served beside the default one (Inference:ModelPath).</summary>
public sealed class NamedModelOptions
{
    /// <summary>How requests name it: /api/classify?model=NAME, /v2/models/NAME.</summary>
    [Required, RegularExpression("^[A-Za-z0-9_.-]{1,100}$", ErrorMessage = "Models:N:Name takes 1 to 100 letters, digits, '_', '.' or '-'.")]
    public string Name { get; set; } = "";
    /// <summary>The ONNX file; relative paths resolve against the content root, as Inference:ModelPath.</summary>
    [Required] public string Path { get; set; } = "";
    /// <summary>A third-party file's profile; empty: name.profile.json beside the file when there.</summary>
    public string? ProfilePath { get; set; }
    [RegularExpression("^[A-Za-z0-9_.-]{1,100}$", ErrorMessage = "Models:N:Version takes 1 to 100 letters, digits, '_', '.' or '-'.")]
    public string Version { get; set; } = "1";
}

/// <summary>
/// A model in service under a name: its <see cref="ServingHost"/> (generations, leases, reload), its own
/// <see cref="InferenceBatcher"/> and <see cref="InferencePipeline"/> (so one model's queue never holds up another's).
/// The default model is the one Inference:* configures, served as before (the gallery belongs to it); the others come
/// from the "Models" list and have no gallery.
/// </summary>
public sealed class ServedModel(string name, string version, bool isDefault, ServingHost host, InferenceBatcher batcher, InferencePipeline pipeline,
    int maxBatchSize)
{
    readonly SemaphoreSlim _one = new(1, 1);

    public string Name { get; } = name;
    public string Version { get; } = version;
    public bool IsDefault { get; } = isDefault;
    public ServingHost Host { get; } = host;
    public InferenceBatcher Batcher { get; } = batcher;
    public InferencePipeline Pipeline { get; } = pipeline;
    public bool Ready => Host.Current is not null;

    /// <summary>Loads, warms up and publishes the configured file (a named model's start and reload; no gallery).</summary>
    internal void Serve(OnnxClassifier classifier)
    {
        classifier.WarmUp(maxBatchSize);
        Host.Publish(new Generation(classifier, index: null));
    }

    /// <summary>A named model's reload: its configured file again; refusals as the default model's (409 busy or not
    /// fitting, 422 missing or not loading), and the current generation keeps serving.</summary>
    internal async Task<ReloadOutcome> ReloadAsync(CancellationToken ct)
    {
        if (!await _one.WaitAsync(0, ct))
            throw new RefusedException(Refusal.Conflict, "Reload already running", $"Model '{Name}' is being reloaded. Send this again when that has answered.");
        try
        {
            var watch = Stopwatch.StartNew();
            var current = Host.Current;
            var next = Load();
            if (next.Model.Fingerprint == current?.Fingerprint)
            {
                next.Dispose();
                return new ReloadOutcome(false, current.Fingerprint, current, 0, watch.Elapsed);
            }
            try
            {
                await Task.Run(() => Serve(next), CancellationToken.None);
            }
            catch
            {
                if (Host.Current?.Classifier != next) next.Dispose();
                throw;
            }
            return new ReloadOutcome(true, current?.Fingerprint, Host.Current!, 0, watch.Elapsed);
        }
        finally
        {
            _one.Release();
        }
    }

    internal OnnxClassifier Load()
    {
        var file = System.IO.Path.GetFileName(Host.ModelPath);
        try
        {
            return Host.LoadClassifier(Host.ProfilePath);
        }
        catch (FileNotFoundException)
        {
            throw new RefusedException(Refusal.Unprocessable, "Model file missing",
                $"Model '{Name}' has no file at its configured path ({file}); whatever it served keeps serving.");
        }
        catch (ModelContractException e)
        {
            throw new RefusedException(Refusal.Conflict, "Model does not fit the service",
                $"Model '{Name}': {e.Message.Replace(Host.ModelPath, file, StringComparison.Ordinal)}");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or CudaUnavailableException)
        {
            throw new RefusedException(Refusal.Unprocessable, "Model file does not load",
                $"Model '{Name}': {e.Message.Replace(Host.ModelPath, file, StringComparison.Ordinal)} If the file is still being copied, send this again when it is complete.");
        }
    }
}

/// <summary>Every model in service by name: the default one (Inference:*, named by Oip:ModelName or its file's name)
/// and those of the "Models" list, each with its own session, batcher and pipeline.</summary>
public sealed class ModelRegistry : IDisposable
{
    readonly Dictionary<string, ServedModel> _byName = new(StringComparer.Ordinal);
    readonly List<IDisposable> _owned = [];

    public ModelRegistry(ServingHost host, InferenceBatcher batcher, InferencePipeline pipeline, CoreScheduler scheduler,
        IEnumerable<IInferenceGate> gates, IOptions<InferenceOptions> inference, IOptions<OipOptions> oip, IOptions<List<NamedModelOptions>> models,
        IOptions<UploadOptions> uploads, IOptions<CacheOptions> cache, IHostEnvironment env, ILoggerFactory logs)
    {
        var o = inference.Value;
        var name = string.IsNullOrWhiteSpace(oip.Value.ModelName) ? Path.GetFileNameWithoutExtension(host.ModelPath) : oip.Value.ModelName;
        Default = new ServedModel(name, oip.Value.ModelVersion, true, host, batcher, pipeline, o.MaxBatchSize);
        _byName[name] = Default;
        var gateList = gates.ToList();
        foreach (var m in models.Value)
        {
            var problems = new List<ValidationResult>();
            if (!Validator.TryValidateObject(m, new ValidationContext(m), problems, validateAllProperties: true))
                throw new OptionsValidationException("Models", typeof(NamedModelOptions), [.. problems.Select(p => $"Models ('{m.Name}'): {p.ErrorMessage}")]);
            if (_byName.ContainsKey(m.Name))
                throw new OptionsValidationException("Models", typeof(NamedModelOptions), [$"Models: the name '{m.Name}' is taken twice (the default model " +
                    $"is '{name}': Oip:ModelName or its file's name); give each model a name of its own."]);
            var options = JsonSerializer.Deserialize<InferenceOptions>(JsonSerializer.Serialize(o))!;   // the default's settings, its own file
            (options.ModelPath, options.ProfilePath) = (m.Path, m.ProfilePath);
            var own = Options.Create(options);
            var mHost = new ServingHost(own, env, logs.CreateLogger<ServingHost>());
            var mBatcher = new InferenceBatcher(scheduler, own, gateList, logs.CreateLogger<InferenceBatcher>());
            var mPipeline = new InferencePipeline(mBatcher, scheduler, uploads, cache);
            _owned.AddRange([mPipeline, mBatcher, mHost]);
            _byName[m.Name] = new ServedModel(m.Name, m.Version, false, mHost, mBatcher, mPipeline, o.MaxBatchSize);
        }
    }

    public ServedModel Default { get; }
    /// <summary>The default model first, then the list's in order.</summary>
    public IEnumerable<ServedModel> All => _byName.Values;
    public IEnumerable<ServedModel> Named => _byName.Values.Where(m => !m.IsDefault);

    /// <summary>The model of that name (the default one for null or empty); a 404 refusal naming the served ones.</summary>
    public ServedModel Resolve(string? name)
    {
        if (string.IsNullOrEmpty(name)) return Default;
        return _byName.TryGetValue(name, out var m) ? m
            : throw RefusedException.NotFound($"Unknown model '{name}'. Served: {string.Join(", ", _byName.Keys.Select(k => $"'{k}'"))} (GET /api/models).");
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
    }
}

/// <summary>Starts the named models' batchers and loads, warms up and publishes their files (after the default
/// model's <see cref="ModelLoader"/>, before Kestrel listens); a file that does not load ends the start with its reason.
/// Stops the batchers (they drain) on shutdown.</summary>
public sealed class NamedModelsService(ModelRegistry registry, ILogger<NamedModelsService> log) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var m in registry.Named)
        {
            await m.Batcher.StartAsync(cancellationToken);
            OnnxClassifier classifier;
            try
            {
                classifier = m.Host.LoadClassifier(m.Host.ProfilePath);
            }
            catch (FileNotFoundException e)
            {
                throw new FileNotFoundException($"Model '{m.Name}' (the Models list): no file at {m.Host.ModelPath}; fix its Path or remove it.", e.FileName, e);
            }
            catch (Exception e) when (e is InvalidDataException or ModelContractException or IOException)
            {
                throw new InvalidDataException($"Model '{m.Name}' (the Models list) cannot be served: {e.Message}", e);
            }
            m.Serve(classifier);
            log.LogInformation("Model '{Name}' ({Path}, {Fingerprint}) serves beside the default one, on {Provider}.", m.Name,
                classifier.Model.Path, classifier.Model.Fingerprint, classifier.Provider.Label());
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var m in registry.Named) await m.Batcher.StopAsync(cancellationToken);
    }
}
