using System.Text.Json;

namespace AlexNet.Api.Endpoints;

/// <summary>Example answers shown in Swagger UI (from the Fashion-MNIST compact model).</summary>
public static class Examples
{
    const string Fingerprint = "sha256:5f0c6a1e9b3d4c2a8e7f6b5a4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d";
    static readonly DateTimeOffset Created = new(2025, 11, 28, 9, 30, 0, TimeSpan.Zero);

    public static readonly ClassifyResponse Classify = new(Fingerprint, false, 3,
        [new ImageClassification(0, false, [new ClassScore(9, "Ankle boot", null, 0.912f), new ClassScore(7, "Sneaker", null, 0.061f),
            new ClassScore(5, "Sandal", null, 0.019f)], OodScore: 0.31f, OutOfDomain: false)]);

    public static readonly FeaturesResponse Features = new(Fingerprint, false, 1024,
        [new ImageFeatures(0, false, [0f, 1.73f, 0.42f, 0f, 2.05f /* ... 1024 values for the compact preset, 4096 for the paper's */])]);

    public static readonly GalleryAddResponse Added = new(Fingerprint,
        [new GalleryItem(42, "boot", "left shoe, studio light", Created, 640, 480,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "/api/gallery/42/thumbnail")]);

    public static readonly GalleryListResponse List = new(1, 0, 50, Added.Items);

    public static readonly SearchResponse Search = new(Fingerprint, 2,
        [new ImageSearch(0, false, [new SearchHit(42, 0f, "boot", "left shoe, studio light", "/api/gallery/42/thumbnail"),
            new SearchHit(17, 23.4f, "sneaker", null, "/api/gallery/17/thumbnail")])]);

    public static readonly SimilarResponse Similar = new(Fingerprint, 42, 1,
        [new SearchHit(17, 23.4f, "sneaker", null, "/api/gallery/17/thumbnail")]);

    public static readonly ModelResponse Model = new("fashion-mnist-compact.onnx", Fingerprint, "compact", "CPU", 56, 64, 10, 1024,
        [new ClassInfo(0, "T-shirt/top", null), new ClassInfo(1, "Trouser", null) /* ... */],
        JsonDocument.Parse("""{"dataset":"Fashion-MNIST","epochs":12,"init":"Kaiming","metrics":{"test_top1_error_centre":0.0993,"test_top1_error_10crop":0.091}}""").RootElement,
        new Dictionary<string, string> { ["alexnet.preset"] = "compact", ["alexnet.input_size"] = "56", ["alexnet.resize_size"] = "64" },
        Profile: null, Domain: AlexNet.Model.LabelSet.FashionMnistDomain);

    public static readonly ReadinessResponse Ready = new("ready", "CPU", "fashion-mnist-compact.onnx", Fingerprint, 1, 0);
}
