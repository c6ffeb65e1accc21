using AlexNet.Model.Imaging;

namespace AlexNet.Model.Tests;

/// <summary>Replays what the fuzzer found (fuzz/run.sh copies crashes and hangs to FuzzRegressions/).</summary>
public class FuzzRegressionTests
{
    public static TheoryData<string> Findings()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "FuzzRegressions")).Order()) data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Findings))]
    public async Task AFuzzFindingIsDecodedOrRejectedNeverThrownOrHung(string name)
    {
        var bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "FuzzRegressions", name));
        var prep = new ImagePreprocessor(AlexNetSpec.Compact());
        var work = Task.Run(() =>
        {
            try
            {
                using var image = SafeImageDecoder.Default.Decode(bytes);
                prep.CenterCrop(prep.Prepare(image));
            }
            catch (ImageRejectedException) { }
        });
        // A hang guard, not a speed target: the fuzzer flagged inputs that ran past its 2 s limit.
        var finished = await Task.WhenAny(work, Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.True(finished == work, $"{name} did not finish decoding in 20 s");
        await work;   // rethrows anything other than ImageRejectedException
    }
}
