using ScalingInteractive.Checkpoints;
using System.Text.Json;
using ScalingInteractive.Commands;
using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Tests.Commands;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

public sealed class LoraCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-lora-cmd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Spectrum_command_compares_variables_and_sets_the_result_variable()
    {
        manual_seed(4);
        var baseModel = nn.Linear(16, 12);
        var w0 = baseModel.weight!.detach().clone();
        var tuned = new Dictionary<string, Tensor> { ["weight"] = w0 + 10 * randn(12, 1).matmul(randn(1, 16)) };
        var host = new TestHost();
        host.Variables["base"] = baseModel;
        host.Variables["tuned"] = tuned;
        await CommandCatalog.InvokeAsync("#!lora-spectrum --base base --tuned tuned --top-k 3 --epsilon-sweep [0.3,0.5] --name cmp", host);
        var result = Assert.IsType<ModelSpectrum>(host.Variables["cmp"]);
        Assert.Equal("cmp", result.Name);
        Assert.Single(result.Layers);
        Assert.Equal([0.3, 0.5], result.EpsilonSweep);
        Assert.Equal(0.5, result.Epsilon);
        Assert.Contains(host.Shown, h => h.Value is ModelSpectrum);
    }

    [Fact]
    public async Task Spectrum_command_reads_safetensors_with_a_peft_adapter()
    {
        manual_seed(6);
        string basePath = Path.Combine(_dir, "model.safetensors");
        SafetensorsWriter.Write(basePath, new Dictionary<string, Tensor> { ["layers.0.q.weight"] = randn(20, 16), ["layers.0.k.weight"] = randn(20, 16) });
        string adapter = Path.Combine(_dir, "adapter");
        Directory.CreateDirectory(adapter);
        SafetensorsWriter.Write(Path.Combine(adapter, "adapter_model.safetensors"), new Dictionary<string, Tensor>
        {
            ["base_model.model.layers.0.q.lora_A.weight"] = randn(1, 16), ["base_model.model.layers.0.q.lora_B.weight"] = 20 * randn(20, 1),
        });
        File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), JsonSerializer.Serialize(new { r = 1, lora_alpha = 2, target_modules = new[] { "q" } }));
        var host = new TestHost();
        await CommandCatalog.InvokeAsync($"#!lora-spectrum --base {basePath} --adapter {adapter} --name r1", host);
        var result = Assert.IsType<ModelSpectrum>(host.Variables["r1"]);
        var layer = Assert.Single(result.Layers);
        Assert.Equal("layers.0.q.weight", layer.Name);
        // A rank-1 update with a large norm: one new dominant direction, rank-1 update spectrum.
        Assert.InRange(layer.UpdateEffectiveRank, 1.0, 1.05);
    }

    [SharedDataFact]
    public async Task Experiment_ToSweepSpec_gives_the_stages_keys_and_identity_the_command_writes_to_its_store()
    {
        string store = Path.Combine(_dir, "cmd.jsonl");
        string rest = "--width 16 --depth 1 --pretrain-steps 2 --steps 2 --sequential-steps 1 --ranks [1] --sequential-ranks [1] --no-rslora " +
                      $"--full-lrs [1e-4] --lora-lrs [1e-3] --batch-size 2 --data-dir \"{RepoPaths.SharedData}\" --store \"{store}\"";
        await CommandCatalog.InvokeAsync("#!lora-experiment " + rest, new TestHost());
        var spec = LoraExperimentCommand.ToSweepSpec("#!lora-experiment " + rest + " --name lora");
        Assert.Equal("lora-experiment", spec.Kind);
        Assert.Equal("lora", spec.Name);
        Assert.Equal(new[] { 0, 1, 2 }, spec.Stages);
        var lines = File.ReadLines(store).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!).ToList();
        var written = lines.Skip(1).Select(l => l["key"]!.GetValue<string>()).ToList();
        Assert.Equal(written.Order(), spec.Keys.Order()); // pre-training, 2 target runs, 2 sequences
        Assert.Equal(5, written.Count);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(lines[0]["identity"], spec.Experiment.StoreIdentity()));
        Assert.Throws<CommandException>(() => LoraExperimentCommand.ToSweepSpec("#!proxy-sweep --widths [16]"));
    }

    [Theory]
    [InlineData("#!lora-spectrum --base nowhere --tuned nowhere", "--base 'nowhere' is neither a C# variable (none has that name) nor an existing file or folder")]
    [InlineData("#!lora-spectrum --base x", "is neither a C# variable")]
    [InlineData("#!lora-spectrum --base x --tuned x --top-k 0", "--top-k")]
    [InlineData("#!lora-spectrum --base x --tuned x --epsilon 1.5", "--epsilon 1.5 is not accepted")]
    [InlineData("#!lora-experiment --ranks [0]", "--ranks")]
    public async Task Bad_command_input_gets_a_user_message(string line, string expected)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => CommandCatalog.InvokeAsync(line, new TestHost()));
        string? message = CommandCatalog.UserErrorMessage(error);
        Assert.NotNull(message);
        Assert.Contains(expected, message);
    }

    [Fact]
    public async Task Spectrum_command_needs_a_tuned_side_and_says_bare_names_are_variables()
    {
        var host = new TestHost();
        host.Variables["a"] = new Dictionary<string, Tensor> { ["w"] = randn(4, 4) };
        var error = await Assert.ThrowsAnyAsync<Exception>(() => CommandCatalog.InvokeAsync("#!lora-spectrum --base a", host));
        Assert.Contains("needs --tuned", CommandCatalog.UserErrorMessage(error));
        // What @csharp:a would have passed: the dictionary's type name, which is neither a variable nor a path.
        error = await Assert.ThrowsAnyAsync<Exception>(() => CommandCatalog.InvokeAsync("#!lora-spectrum --base a --tuned System.Collections.Generic.Dictionary`2", host));
        string message = CommandCatalog.UserErrorMessage(error)!;
        Assert.Contains("--tuned 'System.Collections.Generic.Dictionary`2' is neither a C# variable", message);
        Assert.Contains("bare name", message);
        Assert.Contains("@csharp:", message);
    }

    [Fact]
    public async Task Spectrum_command_rejects_shape_mismatches()
    {
        var host = new TestHost();
        host.Variables["a"] = new Dictionary<string, Tensor> { ["w"] = randn(4, 4) };
        host.Variables["b"] = new Dictionary<string, Tensor> { ["w"] = randn(4, 5) };
        var error = await Assert.ThrowsAnyAsync<Exception>(() => CommandCatalog.InvokeAsync("#!lora-spectrum --base a --tuned b", host));
        Assert.Contains("'w' is [4, 4] in the base model but [4, 5]", CommandCatalog.UserErrorMessage(error));
    }
}
