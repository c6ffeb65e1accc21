using System.Net.Http.Json;
using AlexNet.Api.Endpoints;
using AlexNet.Model.Imaging;
using AlexNet.Training.Evaluation;
using AlexNet.Training.Export;
using AlexNet.Training.Networks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

/// <summary>
/// The service's answer for an image equals the training worker's evaluation of the same image: same decoder,
/// same crop, same normalisation (inside the model), same probabilities within 1e-5.
/// </summary>
public class ServedEqualsTrainedTests
{
    public ServedEqualsTrainedTests() => TorchSetup.Ensure();

    sealed class Service(string model, string db) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Testing");
            builder.ConfigureAppConfiguration(c => c.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Inference:ModelPath"] = model, ["Inference:Provider"] = "Cpu", ["Gallery:DatabasePath"] = db,
                ["Cache:Enabled"] = "false", ["Logging:LogLevel:Default"] = "Warning",
            }));
        }
    }

    static byte[] Photo(int seed)
    {
        var rng = new Random(seed);
        using var image = new Image<Rgb24>(97, 71);
        for (var y = 0; y < image.Height; y++)
            for (var x = 0; x < image.Width; x++)
                image[x, y] = new Rgb24((byte)(x * 2 + rng.Next(40)), (byte)(y * 3 + rng.Next(40)), (byte)rng.Next(256));
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheServedAnswerEqualsTheTrainingWorkersEvaluation(bool tenCrop)
    {
        using var dir = new TempDir();
        var spec = AlexNetSpec.Compact(10);
        random.manual_seed(17);
        using var model = new AlexNetModule(spec, new Normalization([120f, 110f, 100f], [60f, 60f, 60f]));
        model.Initialize(InitScheme.Kaiming);
        model.eval();
        OnnxExporter.Export(model, LabelSet.FashionMnist, new Provenance(), dir.File("m.onnx"));

        using var service = new Service(dir.File("m.onnx"), dir.File("g.db"));
        var client = service.CreateClient();
        for (var i = 0; i < 50 && !(await client.GetAsync("/health/ready")).IsSuccessStatusCode; i++) await Task.Delay(100);

        var prep = new ImagePreprocessor(spec);
        var scorer = new TorchScorer(model);
        foreach (var seed in new[] { 1, 2, 3 })
        {
            var bytes = Photo(seed);
            using var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new("image/png");
            using var response = await client.PostAsync($"/api/classify?k=10&tenCrop={tenCrop}", content);
            response.EnsureSuccessStatusCode();
            var served = (await response.Content.ReadFromJsonAsync<ClassifyResponse>())!.Results[0].Top;

            // The training worker's path: its decoder, its crops, TorchSharp's forward, softmax averaged over crops.
            using var image = SafeImageDecoder.Default.Decode(bytes);
            var prepared = prep.Prepare(image);
            var crops = tenCrop ? prep.TenCrops : [prep.Center];
            var batch = new float[crops.Count * prep.CropLength];
            for (var c = 0; c < crops.Count; c++) prep.WriteCrop(prepared, crops[c], batch.AsSpan(c * prep.CropLength, prep.CropLength));
            var probs = scorer.Probabilities(batch, crops.Count);
            var expected = new float[10];
            for (var c = 0; c < crops.Count; c++)
                for (var k = 0; k < 10; k++) expected[k] += probs[c * 10 + k] / crops.Count;

            Assert.Equal(10, served.Length);
            Assert.Equal(Maths.TopK(expected, 1)[0].Index, served[0].Index);
            foreach (var s in served) Assert.InRange(Math.Abs(s.Probability - expected[s.Index]), 0, 1e-5);
        }
    }
}
