using System.Reflection;
using System.Text.RegularExpressions;

namespace AlexNet.Api.Tests;

/// <summary>
/// docker-compose.yml and docker/*.Dockerfile are checked against the code: every configuration name they set binds
/// to an option the service reads, every mounted path is one the service uses, and the health check URL is mapped.
/// These are the only checks of docker/api-gpu.Dockerfile (no CUDA base image here); the images themselves are built
/// and run by tests/Containers/run.sh.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed partial class ContainerTests(ModelFixture models) : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    /// <summary>The repository root: two folders above the calling test file (tests/Api.Tests/*.cs).</summary>
    internal static string Repo([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));

    /// <summary>What compose substitutes for <c>${NAME:-default}</c> when NAME is unset; other values as they are.</summary>
    static string Default(string value) => ComposeDefault().Match(value) is { Success: true } m ? m.Groups[1].Value : value;

    [GeneratedRegex(@"^\$\{[A-Z_][A-Z0-9_]*:-(.*)\}$")]
    private static partial Regex ComposeDefault();

    /// <summary>A volume entry (<c>source:target[:mode]</c>) with every <c>${NAME:-default}</c> in it at its default.</summary>
    static (string Source, string Target, string Mode) Volume(string entry)
    {
        var parts = ComposeDefaultInside().Replace(entry, m => m.Groups[1].Value).Split(':');
        return (parts[0], parts[1], parts.Length > 2 ? parts[2] : "rw");
    }

    [GeneratedRegex(@"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}")]
    private static partial Regex ComposeDefaultInside();

    /// <summary>A compose file as JSON, parsed by PyYAML (a dependency of Debian's docker-compose).</summary>
    static JsonElement Compose(string file = "docker-compose.yml")
    {
        var psi = new ProcessStartInfo("/usr/bin/python3", ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            Path.Combine(Repo(), file)]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var json = p.StandardOutput.ReadToEnd();
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
        return JsonDocument.Parse(json).RootElement;
    }

    static IEnumerable<(string Service, string Key, string Value)> ServiceEnvironment(JsonElement compose, params string[] services) =>
        services.SelectMany(s => compose.GetProperty("services").GetProperty(s).GetProperty("environment").EnumerateObject()
            .Select(e => (s, e.Name, e.Value.ToString())));

    static IEnumerable<(string Key, string Value)> DockerfileEnvironment(string dockerfile)
    {
        var text = File.ReadAllText(Path.Combine(Repo(), "docker", dockerfile)).Replace("\\\n", " ");
        foreach (Match m in EnvLine().Matches(text))
            foreach (Match kv in EnvPair().Matches(m.Groups[1].Value))
                yield return (kv.Groups[1].Value, kv.Groups[2].Value);
    }

    [GeneratedRegex(@"^ENV\s+(.+)$", RegexOptions.Multiline)] private static partial Regex EnvLine();
    [GeneratedRegex(@"([A-Za-z_][A-Za-z0-9_]*)=(\S+)")] private static partial Regex EnvPair();

    /// <summary>"Section__Property" must name a public settable property of the service's SectionOptions class,
    /// and the value must convert to its type. ASPNETCORE_* and AllowedHosts (host filtering) are the framework's own.</summary>
    static void AssertBinds(string key, string value, string where)
    {
        if (key.StartsWith("ASPNETCORE_", StringComparison.Ordinal)) return;
        if (key == "AllowedHosts")   // ASP.NET Core's host filtering, a top-level key: the service's appsettings set it too
        {
            using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo(), "src", "Api", "appsettings.json")));
            Assert.True(settings.RootElement.TryGetProperty(key, out _), $"{where}: {key} is not in src/Api/appsettings.json");
            return;
        }
        var parts = key.Split("__");
        Assert.True(parts.Length == 2, $"{where}: {key} is not Section__Property");
        var options = typeof(Program).Assembly.GetTypes().SingleOrDefault(t => t.Name == parts[0] + "Options");
        Assert.True(options is not null, $"{where}: no {parts[0]}Options class reads {key}");
        var property = options!.GetProperty(parts[1], BindingFlags.Public | BindingFlags.Instance);
        Assert.True(property is { CanWrite: true }, $"{where}: {options.Name} has no settable {parts[1]} for {key}");
        if (value.StartsWith("${", StringComparison.Ordinal)) return;          // from the host's environment
        var type = Nullable.GetUnderlyingType(property!.PropertyType) ?? property.PropertyType;
        if (type.IsEnum) Assert.True(Enum.TryParse(type, value, ignoreCase: true, out _), $"{where}: {key}={value} is not a {type.Name}");
        else Convert.ChangeType(value, type, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void EveryEnvironmentVariableInComposeAndTheImagesBindsToAnOptionTheServiceReads()
    {
        var compose = Compose();
        var env = ServiceEnvironment(compose, "api", "api-gpu").ToList();
        Assert.Contains(env, e => e.Key == "Security__ApiKey" && e.Value.StartsWith("${", StringComparison.Ordinal));   // never a literal secret
        foreach (var (service, key, value) in env) AssertBinds(key, value, $"compose {service}");
        foreach (var file in new[] { "api.Dockerfile", "api-gpu.Dockerfile" })
            foreach (var (key, value) in DockerfileEnvironment(file)) AssertBinds(key, value, file);
    }

    [Fact]
    public void MountedPathsAreThePathsTheServiceAndTheWorkerUse()
    {
        var compose = Compose();
        foreach (var service in new[] { "api", "api-gpu" })
        {
            var s = compose.GetProperty("services").GetProperty(service);
            var volumes = s.GetProperty("volumes").EnumerateArray().Select(v => Volume(v.GetString()!)).ToList();
            var env = s.GetProperty("environment");
            var modelPath = Default(env.GetProperty("Inference__ModelPath").GetString()!);
            var dbPath = env.GetProperty("Gallery__DatabasePath").GetString()!;
            var models = Assert.Single(volumes, v => v.Source == "./models");
            Assert.Equal("ro", models.Mode);                                                  // the service only reads models
            Assert.StartsWith(models.Target + "/", modelPath);
            Assert.True(File.Exists(Path.Combine(Repo(), "models", Path.GetRelativePath(models.Target, modelPath))),
                $"{service}: {modelPath} is not in ./models");
            var gallery = Assert.Single(volumes, v => v.Source == "gallery");
            Assert.StartsWith(gallery.Target + "/", dbPath);                                  // the database lives on the named volume
        }
        var training = compose.GetProperty("services").GetProperty("training");
        Assert.Equal("training", training.GetProperty("profiles")[0].GetString());
        var command = training.GetProperty("command").EnumerateArray().Select(c => c.GetString()!).ToList();
        var mounts = training.GetProperty("volumes").EnumerateArray().Select(v => Volume(v.GetString()!)).ToList();
        foreach (var flag in new[] { "--out", "--export", "--fashion-mnist" })
        {
            var value = command[command.IndexOf(flag) + 1];
            Assert.True(mounts.Any(m => value == m.Target || value.StartsWith(m.Target + "/", StringComparison.Ordinal)), $"training {flag} {value} is outside its mounts");
        }
        // Training writes into the folder the service reads its models from, beside the bundled model, not over it.
        var export = command[command.IndexOf("--export") + 1];
        var exportMount = Assert.Single(mounts, m => export.StartsWith(m.Target + "/", StringComparison.Ordinal));
        Assert.Equal(("./models", "/models", "rw"), exportMount);
        var apiModel = Default(compose.GetProperty("services").GetProperty("api").GetProperty("environment").GetProperty("Inference__ModelPath").GetString()!);
        Assert.NotEqual(apiModel, export);
        Assert.False(File.Exists(Path.Combine(Repo(), "models", Path.GetRelativePath("/models", export))), $"{export} is a tracked file");
        // The recipe is the demo model's card's.
        var card = File.ReadAllText(Path.Combine(Repo(), "models", "fashion-mnist-compact.md"));
        foreach (var flag in new[] { "--preset", "--epochs", "--schedule", "--init", "--normalize" })
            Assert.Contains($"{flag} {command[command.IndexOf(flag) + 1]}", card);
        var steps = command.Skip(command.IndexOf("--step-epochs") + 1).TakeWhile(c => !c.StartsWith("--", StringComparison.Ordinal));
        Assert.Contains($"--step-epochs {string.Join(' ', steps)}", card);
    }

    [Fact]
    public async Task TheHealthCheckOfComposeAndTheImagesIsTheScriptAndItsUrlIsMapped()
    {
        var compose = Compose();
        foreach (var service in new[] { "api", "api-gpu" })
            Assert.Equal(["CMD", "alexnet-healthcheck"], compose.GetProperty("services").GetProperty(service).GetProperty("healthcheck")
                .GetProperty("test").EnumerateArray().Select(e => e.GetString()!).ToArray());
        foreach (var file in new[] { "api.Dockerfile", "api-gpu.Dockerfile" })
        {
            var text = File.ReadAllText(Path.Combine(Repo(), "docker", file));
            Assert.Matches(@"HEALTHCHECK [^\n]*\\\n\s*CMD \[""alexnet-healthcheck""\]", text);
            Assert.Contains("COPY docker/healthcheck.sh /usr/local/bin/alexnet-healthcheck", text);
        }
        // The script asks http://localhost:<configured port><path>.
        var path = HealthPath().Match(File.ReadAllText(Path.Combine(Repo(), "docker", "healthcheck.sh"))).Groups[1].Value;
        Assert.Equal("/health/ready", path);
        using var factory = new ApiFactory(models.ModelA, _dir.File("gallery.db"));
        var client = await factory.ReadyClientAsync();
        using var response = await client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [GeneratedRegex(@"""http://localhost:\$\{port\}(/[^""]+)""")] private static partial Regex HealthPath();

    /// <summary>"Key=Value;Key=Value" (Npgsql's connection string syntax, no quoting) as a dictionary.</summary>
    static Dictionary<string, string> ConnectionString(string value) =>
        value.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim());

    static string HaproxyConfig() => File.ReadAllText(Path.Combine(Repo(), "docker", "haproxy.cfg"));

    [Fact]
    public void TheReplicasFileSharesOnePostgresAndItsHaproxyFindsEveryScaledReplicaOnItsReadinessCheck()
    {
        var services = Compose("docker-compose.replicas.yml").GetProperty("services");
        var api = services.GetProperty("api");
        var postgres = services.GetProperty("postgres");
        var haproxy = services.GetProperty("haproxy");

        // Scalable: no fixed container name, no host port (only HAProxy publishes one).
        Assert.False(api.TryGetProperty("container_name", out _), "api has a container_name: --scale cannot make a second one");
        Assert.False(api.TryGetProperty("ports", out _), "api publishes a host port: --scale would make replicas fight for it");
        Assert.Single(haproxy.GetProperty("ports").EnumerateArray());

        // PostgreSQL: the official image, its data on a named volume, a health check the replicas wait for.
        Assert.StartsWith("postgres:15", postgres.GetProperty("image").GetString());
        var data = Assert.Single(postgres.GetProperty("volumes").EnumerateArray().Select(v => Volume(v.GetString()!)));
        Assert.Equal("/var/lib/postgresql/data", data.Target);
        Assert.True(Compose("docker-compose.replicas.yml").GetProperty("volumes").TryGetProperty(data.Source, out _), $"{data.Source} is not a named volume");
        Assert.Contains("pg_isready", string.Join(' ', postgres.GetProperty("healthcheck").GetProperty("test").EnumerateArray().Select(e => e.GetString())));
        Assert.Equal("service_healthy", api.GetProperty("depends_on").GetProperty("postgres").GetProperty("condition").GetString());

        // The replicas' connection string names that service, its database, user and password (one variable, no default).
        var pgEnv = postgres.GetProperty("environment");
        var connection = ConnectionString(api.GetProperty("environment").GetProperty("ConnectionStrings__Gallery").GetString()!);
        Assert.Equal("postgres", connection["Host"]);
        Assert.Equal(pgEnv.GetProperty("POSTGRES_DB").GetString(), connection["Database"]);
        Assert.Equal(pgEnv.GetProperty("POSTGRES_USER").GetString(), connection["Username"]);
        Assert.Equal(pgEnv.GetProperty("POSTGRES_PASSWORD").GetString(), connection["Password"]);
        Assert.StartsWith("${ALEXNET_PG_PASSWORD:?", connection["Password"]);

        // The same image, model mount and health check as the single service.
        var single = Compose().GetProperty("services").GetProperty("api");
        Assert.Equal(single.GetProperty("build").ToString(), api.GetProperty("build").ToString());
        Assert.Equal(single.GetProperty("healthcheck").GetProperty("test").ToString(), api.GetProperty("healthcheck").GetProperty("test").ToString());
        var models = Assert.Single(api.GetProperty("volumes").EnumerateArray().Select(v => Volume(v.GetString()!)));
        Assert.Equal(("./models", "/models", "ro"), models);

        // HAProxy: the official image with docker/haproxy.cfg, on the port it publishes.
        Assert.StartsWith("haproxy:", haproxy.GetProperty("image").GetString());
        var config = Assert.Single(haproxy.GetProperty("volumes").EnumerateArray().Select(v => Volume(v.GetString()!)));
        Assert.Equal(("./docker/haproxy.cfg", "/usr/local/etc/haproxy/haproxy.cfg", "ro"), config);
        var text = HaproxyConfig();
        var published = haproxy.GetProperty("ports")[0].GetString()!.Split(':');
        Assert.Matches($@"\n\s*bind :{published[^1]}\s*\n", text);
        // It finds the replicas through Docker's DNS (every container of the service `api`), on the port the image
        // serves, with room for --scale api=3 and more, and checks the URL the service maps for readiness.
        Assert.Matches(@"\n\s*nameserver \S+ 127\.0\.0\.11:53\s*\n", text);
        var template = Regex.Match(text, @"\n\s*server-template (\S+) (\d+) (\S+):(\d+)\s*\n");
        Assert.True(template.Success, "docker/haproxy.cfg has no server-template");
        Assert.True(services.TryGetProperty(template.Groups[3].Value, out _), $"server-template names {template.Groups[3].Value}, not a service");
        Assert.Equal("api", template.Groups[3].Value);
        Assert.True(int.Parse(template.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) >= 3, "fewer slots than --scale api=3 needs");
        var imagePort = DockerfileEnvironment("api.Dockerfile").Single(e => e.Key == "ASPNETCORE_HTTP_PORTS").Value;
        Assert.Equal(imagePort, template.Groups[4].Value);
        Assert.Contains(imagePort, api.GetProperty("expose").EnumerateArray().Select(e => e.GetString()));
        Assert.Matches(@"\n\s*default-server [^\n]*\bresolvers docker\b", text);
        Assert.Matches(@"\n\s*http-check send meth GET uri /health/ready ", text);
        Assert.Matches(@"\n\s*http-check expect status 200\s*\n", text);
        // A write is never replayed by the balancer after the replica that took it went silent.
        Assert.Matches(@"\n\s*http-request disable-l7-retry unless safe_method \|\| pure_post\s*\n", text);
        Assert.DoesNotContain("/api/gallery ", Regex.Match(text, @"acl pure_post [^\n]*").Value + " ");

        // Every other setting binds as in the single service's file.
        foreach (var e in api.GetProperty("environment").EnumerateObject())
        {
            if (e.Name is "Gallery__Store" or "ConnectionStrings__Gallery") continue;   // TheReplicasFileChoosesThePostgresStore
            if (e.Name.StartsWith("ForwardedHeaders__TrustedProxies__", StringComparison.Ordinal))
            {
                Assert.True(typeof(AlexNet.Api.Http.ProxyOptions).GetProperty(nameof(AlexNet.Api.Http.ProxyOptions.TrustedProxies)) is { CanWrite: true });
                var subnet = Default(e.Value.GetString()!);
                Assert.True(System.Net.IPNetwork.TryParse(subnet, out _), $"{e.Name}={subnet} is not a network");
                // The trusted network is the one the file makes for its containers.
                Assert.Equal(e.Value.GetString(), Compose("docker-compose.replicas.yml").GetProperty("networks").GetProperty("replicas")
                    .GetProperty("ipam").GetProperty("config")[0].GetProperty("subnet").GetString());
                continue;
            }
            AssertBinds(e.Name, e.Value.ToString(), "docker-compose.replicas.yml api");
        }
    }

    /// <summary>The two settings the shared store adds: Gallery__Store binds to GalleryOptions and the service reads the
    /// connection string "Gallery".</summary>
    [Fact]
    public void TheReplicasFileChoosesThePostgresStore()
    {
        var env = Compose("docker-compose.replicas.yml").GetProperty("services").GetProperty("api").GetProperty("environment");
        AssertBinds("Gallery__Store", env.GetProperty("Gallery__Store").GetString()!, "docker-compose.replicas.yml api");
        var sources = Directory.EnumerateFiles(Path.Combine(Repo(), "src", "Api"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText);
        Assert.True(sources.Any(t => t.Contains("GetConnectionString(\"Gallery\")", StringComparison.Ordinal)
            || t.Contains("\"ConnectionStrings:Gallery\"", StringComparison.Ordinal)),
            "nothing in src/Api reads the connection string Gallery that ConnectionStrings__Gallery sets");
    }
}
