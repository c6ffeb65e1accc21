namespace AlexNet.Model.Tests;

public class LabelTests
{
    [Fact]
    public void ImageNetSynsetFileGivesNamesAndWordNetIds()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("labels-").FullName, "synsets.txt");
        File.WriteAllLines(path, ["n01440764\ttench, Tinca tinca", "n01443537\tgoldfish, Carassius auratus"]);
        var labels = LabelSet.Load(path);
        Assert.Equal(["tench, Tinca tinca", "goldfish, Carassius auratus"], labels.Names);
        Assert.Equal(["n01440764", "n01443537"], labels.Synsets!);
        File.WriteAllLines(path, ["cat", "dog"]);
        Assert.Null(LabelSet.Load(path).Synsets);
    }
}
