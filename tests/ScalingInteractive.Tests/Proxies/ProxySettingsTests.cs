using ScalingInteractive.Proxies;

namespace ScalingInteractive.Tests.Proxies;

public class ProxySettingsTests
{
    private static readonly ProxyTrainingOptions Training = new() { Steps = 200 };

    [Fact]
    public void Named_settings_carry_the_paper_defaults()
    {
        Assert.Equal(new ProxySetting { Name = "baseline" }, ProxySettings.Create("baseline", Training, [32]));
        var both = ProxySettings.Create("qk-layernorm+z-loss", Training, [32]);
        Assert.True(both.QkLayerNorm);
        Assert.True(both.ZLoss);
        Assert.Equal(20, ProxySettings.Create("warmup", Training, [32]).WarmupSteps); // 10% of the steps when the base has none
        Assert.Equal(7, ProxySettings.Create("warmup", Training with { WarmupSteps = 7 }, [32]).WarmupSteps);
        var wd = ProxySettings.Create("independent-wd", Training, [32]);
        Assert.Equal(WeightDecayMode.Independent, wd.WeightDecayMode);
        Assert.Equal(ProxySettings.IndependentWeightDecay, wd.WeightDecay);
        Assert.Equal(32, ProxySettings.Create("mup", Training, [64, 32]).MupBaseWidth);
        Assert.Equal(16, ProxySettings.Create("mup", Training, [64, 32], mupBaseWidth: 16).MupBaseWidth);
        Assert.True(ProxySettings.Create("sp", Training, [32]).StandardParametrisation);
        Assert.Contains("'magic' is not known", Assert.Throws<ArgumentException>(() => ProxySettings.Create("z-loss+magic", Training, [32])).Message);
        foreach (string name in ProxySettings.Names) Assert.Equal(name, ProxySettings.Create(name, Training, [32]).Name);
    }

    [SharedDataFact]
    public void Corpora_resolve_by_name_or_path()
    {
        Assert.Equal("synthetic-grammar", TextCorpus.Resolve(null).Name);
        Assert.Equal("synthetic-grammar", TextCorpus.Resolve("Synthetic").Name);
        Assert.Equal(TextCorpus.TinyShakespeareFile, TextCorpus.Resolve("shakespeare", RepoPaths.SharedData).Name);
        Assert.Equal(TextCorpus.TinyShakespeareFile, TextCorpus.Resolve(TextCorpus.TinyShakespeareFile, RepoPaths.SharedData).Name);
        Assert.Equal(TextCorpus.TinyShakespeareFile, TextCorpus.Resolve(Path.Combine(RepoPaths.SharedData, TextCorpus.TinyShakespeareFile), "/nowhere").Name);
        Assert.Contains("neither 'synthetic', 'shakespeare' nor an existing file", Assert.Throws<FileNotFoundException>(() => TextCorpus.Resolve("shakespeare", "/nowhere")).Message);
    }
}
