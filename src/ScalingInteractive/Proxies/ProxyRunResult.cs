using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Display;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Proxies;

/// <summary>The outcome of one proxy training run: final losses, divergence, and the sampled training curves.</summary>
public sealed class ProxyRunResult : IRichResult
{
    /// <summary>Model configuration.</summary>
    public required ProxyModelConfig Model { get; init; }

    /// <summary>Training options.</summary>
    public required ProxyTrainingOptions Training { get; init; }

    /// <summary>Corpus name.</summary>
    public required string Corpus { get; init; }

    /// <summary>Device the run used.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Non-embedding parameters N.</summary>
    public long Parameters { get; init; }

    /// <summary>All parameters.</summary>
    public long ParametersWithEmbeddings { get; init; }

    /// <summary>Steps actually taken (fewer than planned when the run diverged).</summary>
    public int StepsCompleted { get; init; }

    /// <summary>Training tokens seen D = steps x batch x sequence length.</summary>
    public long Tokens { get; init; }

    /// <summary>Validation loss at initialisation L0.</summary>
    public double InitialLoss { get; init; }

    /// <summary>Final validation loss (NaN when diverged).</summary>
    public double FinalLoss { get; init; }

    /// <summary>Training loss at the last logged step.</summary>
    public double FinalTrainLoss { get; init; }

    /// <summary>True when the run diverged (NaN/Inf or loss far above the initial loss).</summary>
    public bool Diverged { get; init; }

    /// <summary>Why the run was judged diverged.</summary>
    public string? DivergenceReason { get; init; }

    /// <summary>Metrics at the logged steps.</summary>
    public IReadOnlyList<ProxyMetrics> Metrics { get; init; } = [];

    /// <summary>Validation losses (step 0, chosen steps, end).</summary>
    public IReadOnlyList<ProxyValidationPoint> Validation { get; init; } = [];

    /// <summary>Wall time of the training loop in seconds.</summary>
    public double Seconds { get; init; }

    /// <summary>Training throughput.</summary>
    public double TokensPerSecond { get; init; }

    /// <summary>Largest max-attention-logit over layers and logged steps.</summary>
    public double PeakAttentionLogit => Metrics.Count == 0 ? double.NaN : Metrics.Max(m => m.MaxAttentionLogit.DefaultIfEmpty(double.NaN).Max());

    /// <summary>
    /// A run-store record with plain fields the fitting API reads by name: <c>parameters</c>, <c>tokens</c>,
    /// <c>finalLoss</c>, <c>learningRate</c>, <c>batchSize</c>, <c>width</c>, <c>diverged</c>, and the curves
    /// <c>curve.step</c>, <c>curve.lr</c>, <c>curve.loss</c> (and the other metrics) as arrays; <c>model</c> and
    /// <c>training</c> hold the full configuration.
    /// </summary>
    public JsonObject ToRecord(string key, string experiment, string setting)
    {
        static JsonArray Numbers(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
        var last = Metrics.Count > 0 ? Metrics[^1] : null;
        return new JsonObject
        {
            ["key"] = key,
            ["experiment"] = experiment,
            ["setting"] = setting,
            ["corpus"] = Corpus,
            ["device"] = Device,
            ["width"] = Model.Width,
            ["depth"] = Model.Depth,
            ["heads"] = Model.Heads,
            ["seed"] = Training.Seed,
            ["learningRate"] = Training.LearningRate,
            ["batchSize"] = Training.BatchSize,
            ["sequenceLength"] = Training.SequenceLength,
            ["steps"] = Training.Steps,
            ["stepsCompleted"] = StepsCompleted,
            ["schedule"] = Training.Schedule.ToString(),
            ["warmupSteps"] = Training.WarmupSteps,
            ["weightDecay"] = Training.WeightDecay,
            ["independentWeightDecay"] = Training.WeightDecayMode == WeightDecayMode.Independent,
            ["qkLayerNorm"] = Model.QkLayerNorm,
            ["zLoss"] = Training.ZLoss,
            ["mupBaseWidth"] = Model.MupBaseWidth,
            ["parameters"] = Parameters,
            ["parametersWithEmbeddings"] = ParametersWithEmbeddings,
            ["tokens"] = Tokens,
            ["initialLoss"] = InitialLoss,
            ["finalLoss"] = FinalLoss,
            ["finalTrainLoss"] = FinalTrainLoss,
            ["diverged"] = Diverged,
            ["divergenceReason"] = DivergenceReason,
            ["maxAttentionLogit"] = PeakAttentionLogit,
            ["finalMeanLogZ"] = last?.MeanLogZ ?? double.NaN,
            ["finalMaxAbsLogit"] = last?.MaxAbsLogit ?? double.NaN,
            ["seconds"] = Seconds,
            ["tokensPerSecond"] = TokensPerSecond,
            ["curve"] = new JsonObject
            {
                ["step"] = Numbers(Metrics.Select(m => (double)m.Step)),
                ["tokens"] = Numbers(Metrics.Select(m => (double)m.Step * Training.BatchSize * Training.SequenceLength)),
                ["lr"] = Numbers(Metrics.Select(m => m.LearningRate)),
                ["loss"] = Numbers(Metrics.Select(m => m.Loss)),
                ["zLoss"] = Numbers(Metrics.Select(m => m.ZLoss)),
                ["meanLogZ"] = Numbers(Metrics.Select(m => m.MeanLogZ)),
                ["maxAbsLogit"] = Numbers(Metrics.Select(m => m.MaxAbsLogit)),
                ["gradNorm"] = Numbers(Metrics.Select(m => m.GradNorm)),
                ["parameterRms"] = Numbers(Metrics.Select(m => m.ParameterRms)),
                ["updateRms"] = Numbers(Metrics.Select(m => m.UpdateRms)),
                ["maxAttentionLogit"] = Numbers(Metrics.Select(m => m.MaxAttentionLogit.DefaultIfEmpty(double.NaN).Max())),
                ["maxAttentionLogitPerLayer"] = new JsonArray(Metrics.Select(m => (JsonNode?)Numbers(m.MaxAttentionLogit)).ToArray()),
                ["activationRmsPerLayer"] = new JsonArray(Metrics.Select(m => (JsonNode?)Numbers(m.ActivationRms)).ToArray()),
            },
            ["validation"] = new JsonObject
            {
                ["step"] = Numbers(Validation.Select(v => (double)v.Step)),
                ["loss"] = Numbers(Validation.Select(v => v.Loss)),
            },
            ["model"] = JsonSerializer.SerializeToNode(Model, RunStore.JsonOptions),
            ["training"] = JsonSerializer.SerializeToNode(Training, RunStore.JsonOptions),
        };
    }

    private IEnumerable<(string Name, string Value)> Summary()
    {
        yield return ("corpus", Corpus);
        yield return ("model", $"width {Model.Width}, depth {Model.Depth}, heads {Model.Heads}{(Model.QkLayerNorm ? ", qk-layernorm" : "")}{(Model.MupBaseWidth is double b ? $", muP base {b}" : "")}");
        yield return ("parameters (non-embedding / all)", $"{Parameters:N0} / {ParametersWithEmbeddings:N0}");
        yield return ("learning rate", $"{HtmlText.Number(Training.LearningRate)} ({Training.Schedule}, warm-up {Training.WarmupSteps})");
        yield return ("steps x batch x seq", $"{StepsCompleted}/{Training.Steps} x {Training.BatchSize} x {Training.SequenceLength} = {Tokens:N0} tokens");
        yield return ("initial -> final validation loss", $"{HtmlText.Number(InitialLoss)} -> {HtmlText.Number(FinalLoss)}");
        yield return ("diverged", Diverged ? "yes: " + DivergenceReason : "no");
        yield return ("peak max attention logit", HtmlText.Number(PeakAttentionLogit));
        yield return ("final mean log Z", HtmlText.Number(Metrics.Count > 0 ? Metrics[^1].MeanLogZ : double.NaN));
        yield return ("time, throughput", $"{Seconds:F1} s, {TokensPerSecond:N0} tokens/s on {Device}");
    }

    private string? _html;

    /// <inheritdoc />
    public string ToHtml() => _html ??= BuildHtml(); // charts carry random element ids: build once so the HTML is stable

    private string BuildHtml()
    {
        var sb = new StringBuilder("<div class=\"si-result\">").Append(HtmlText.Style);
        sb.Append("<h3>Proxy training run</h3>");
        sb.Append(HtmlText.Table(["", "value"], Summary().Select(r => new[] { r.Name, r.Value })));
        if (Metrics.Count > 1)
        {
            var steps = Metrics.Select(m => (double)m.Step).ToList();
            sb.Append(Charts.Lines(new ChartOptions("Training loss", "step", "loss (nats/token)"),
                [new Series("train", steps, Metrics.Select(m => m.Loss).ToList()),
                 new Series("validation", Validation.Select(v => (double)v.Step).ToList(), Validation.Select(v => v.Loss).ToList(), Markers: true)]).ToHtml(320));
            int layers = Metrics[0].MaxAttentionLogit.Length;
            var series = Enumerable.Range(0, layers).Select(l => new Series($"layer {l} max attention logit", steps, Metrics.Select(m => m.MaxAttentionLogit[l]).ToList())).ToList();
            series.Add(new Series("mean log Z", steps, Metrics.Select(m => m.MeanLogZ).ToList()));
            sb.Append(Charts.Lines(new ChartOptions("Attention logits and log Z", "step", "value"), series).ToHtml(320));
        }
        return sb.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToText() => HtmlText.TextTable(["", "value"], Summary().Select(r => (IReadOnlyList<string>)[r.Name, r.Value]));

    /// <inheritdoc />
    public string ToJson() => ToRecord(key: "", experiment: "proxy-train", setting: "").ToJsonString(RunStore.JsonOptions);
}
