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

    /// <summary>Largest max-attention-logit over layers and logged steps (NaN entries of a diverging run are skipped).</summary>
    public double PeakAttentionLogit =>
        Metrics.SelectMany(m => m.MaxAttentionLogit).Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Max();

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
            ["divergedAtStep"] = Diverged ? StepsCompleted : null,
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
            ["model"] = JsonSerializer.SerializeToNode(Model, ProxiesJson.Default.ProxyModelConfig),
            ["training"] = JsonSerializer.SerializeToNode(Training, ProxiesJson.Default.ProxyTrainingOptions),
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

/// <summary>
/// A proxy run as stored in a run store (<see cref="ProxyRunResult.ToRecord"/>), typed: read a store with
/// <c>store.Read&lt;ProxyRunRecord&gt;()</c>. Field names are the JSON names (camelCase).
/// </summary>
public sealed record ProxyRunRecord
{
    /// <summary>Run key (hash of the run's configuration).</summary>
    public string Key { get; init; } = "";
    /// <summary>Experiment label.</summary>
    public string Experiment { get; init; } = "";
    /// <summary>Setting label.</summary>
    public string Setting { get; init; } = "";
    /// <summary>Corpus name.</summary>
    public string Corpus { get; init; } = "";
    /// <summary>Device.</summary>
    public string Device { get; init; } = "";
    /// <summary>Model width.</summary>
    public int Width { get; init; }
    /// <summary>Blocks.</summary>
    public int Depth { get; init; }
    /// <summary>Heads.</summary>
    public int Heads { get; init; }
    /// <summary>Seed.</summary>
    public long Seed { get; init; }
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; }
    /// <summary>Batch size.</summary>
    public int BatchSize { get; init; }
    /// <summary>Sequence length.</summary>
    public int SequenceLength { get; init; }
    /// <summary>Planned steps.</summary>
    public int Steps { get; init; }
    /// <summary>Steps taken.</summary>
    public int StepsCompleted { get; init; }
    /// <summary>Schedule name.</summary>
    public string Schedule { get; init; } = "";
    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Independent weight decay.</summary>
    public bool IndependentWeightDecay { get; init; }
    /// <summary>qk-layernorm.</summary>
    public bool QkLayerNorm { get; init; }
    /// <summary>z-loss.</summary>
    public bool ZLoss { get; init; }
    /// <summary>muP base width (null: standard parametrisation).</summary>
    public double? MupBaseWidth { get; init; }
    /// <summary>Non-embedding parameters.</summary>
    public long Parameters { get; init; }
    /// <summary>All parameters.</summary>
    public long ParametersWithEmbeddings { get; init; }
    /// <summary>Tokens seen.</summary>
    public long Tokens { get; init; }
    /// <summary>Validation loss at initialisation.</summary>
    public double InitialLoss { get; init; }
    /// <summary>Final validation loss (NaN when diverged).</summary>
    public double FinalLoss { get; init; }
    /// <summary>Last logged training loss.</summary>
    public double FinalTrainLoss { get; init; }
    /// <summary>Diverged.</summary>
    public bool Diverged { get; init; }
    /// <summary>Why it diverged.</summary>
    public string? DivergenceReason { get; init; }
    /// <summary>The step at which it was judged diverged (null when it did not; absent in records written before this field).</summary>
    public int? DivergedAtStep { get; init; }
    /// <summary>Peak max attention logit.</summary>
    public double MaxAttentionLogit { get; init; }
    /// <summary>Mean log Z at the last logged step.</summary>
    public double FinalMeanLogZ { get; init; }
    /// <summary>Max |logit| at the last logged step.</summary>
    public double FinalMaxAbsLogit { get; init; }
    /// <summary>Seconds of training (an ensemble member's share of its ensemble's time).</summary>
    public double Seconds { get; init; }
    /// <summary>Tokens per second.</summary>
    public double TokensPerSecond { get; init; }
    /// <summary>Logged curves.</summary>
    public ProxyCurve Curve { get; init; } = new();
    /// <summary>Full model configuration.</summary>
    public ProxyModelConfig? Model { get; init; }
    /// <summary>Full training options.</summary>
    public ProxyTrainingOptions? Training { get; init; }
}

/// <summary>The logged curves of a stored proxy run (one entry per logged step).</summary>
public sealed record ProxyCurve
{
    /// <summary>Steps.</summary>
    public double[] Step { get; init; } = [];
    /// <summary>Tokens.</summary>
    public double[] Tokens { get; init; } = [];
    /// <summary>Learning rates.</summary>
    public double[] Lr { get; init; } = [];
    /// <summary>Training losses.</summary>
    public double[] Loss { get; init; } = [];
    /// <summary>z-loss terms.</summary>
    public double[] ZLoss { get; init; } = [];
    /// <summary>Mean log Z.</summary>
    public double[] MeanLogZ { get; init; } = [];
    /// <summary>Max |logit|.</summary>
    public double[] MaxAbsLogit { get; init; } = [];
    /// <summary>Gradient norms before clipping.</summary>
    public double[] GradNorm { get; init; } = [];
    /// <summary>Parameter RMS.</summary>
    public double[] ParameterRms { get; init; } = [];
    /// <summary>Update RMS.</summary>
    public double[] UpdateRms { get; init; } = [];
    /// <summary>Max attention logit over layers.</summary>
    public double[] MaxAttentionLogit { get; init; } = [];
}
