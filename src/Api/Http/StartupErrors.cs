using AlexNet.Api.Gallery;
using AlexNet.Api.Inference;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Http;

/// <summary>
/// A start that fails for a reason the operator can fix (a port in use, a bad setting, a missing or malformed model,
/// a gallery database that is not ours) ends with one line naming the cause and what to change, and exit code 1;
/// not a stack trace. Anything else is a fault and stays an unhandled exception.
/// </summary>
public static class StartupErrors
{
    public static void RunOrExplain(this WebApplication app)
    {
        try
        {
            app.Run();
        }
        catch (Exception e) when (Explain(e) is { } line && !HostedByTestFactory)
        {
            app.Logger.LogCritical("The service cannot start: {Reason}", line);
            Console.Error.WriteLine($"alexnet-api: cannot start: {line}");
            Environment.ExitCode = 1;
        }
    }

    /// <summary>Under WebApplicationFactory the exception must reach the factory, which rethrows it to the test.</summary>
    static bool HostedByTestFactory =>
        AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "Microsoft.AspNetCore.Mvc.Testing");

    /// <summary>The host logs a failed start with the stack trace; <see cref="RunOrExplain"/> says it in one line instead.</summary>
    public static IServiceCollection QuietFailedStarts(this IServiceCollection services) =>
        services.AddLogging(l => l.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical));

    static string? Explain(Exception e) => e switch
    {
        IOException { InnerException: AddressInUseException } =>
            $"{e.Message} Another process listens there: stop it, or choose another address with --urls (for example " +
            "--urls http://localhost:5090) or the ASPNETCORE_URLS environment variable (for the gRPC port: Grpc__Url, or empty to turn gRPC off).",
        OptionsValidationException => $"a setting is not valid: {e.Message}",
        FileNotFoundException or InvalidDataException or ModelContractException or GalleryUnavailableException => e.Message,
        AggregateException { InnerExceptions: [var only] } => Explain(only),
        _ => null,
    };
}
