using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;

namespace ScalingInteractive.LoraSpectra;

/// <summary>
/// Where the LoRA experiment's corpora come from, as data a worker on another machine rebuilds: A (pre-training) and the
/// tasks B -> C -> D (<see cref="LoraExperimentCorpora"/> once loaded).
/// </summary>
/// <param name="Pretrain">Corpus A.</param>
/// <param name="Tasks">Fine-tuning tasks in order; the first is the target B of the main comparison.</param>
public sealed record LoraExperimentSources(CorpusSource Pretrain, IReadOnlyList<CorpusSource> Tasks)
{
    /// <summary>
    /// The default corpora (<see cref="LoraExperimentCorpora.Default"/>): A = the built-in synthetic grammar
    /// (<paramref name="syntheticBytes"/> bytes, seed 0); B = tiny Shakespeare (named <c>shakespeare</c>); C = the same text
    /// with every line reversed (<c>shakespeare-reversed-lines</c>); D = the text upper-cased (<c>shakespeare-uppercase</c>).
    /// The names are those of earlier versions, so store identities and keys are unchanged.
    /// </summary>
    public static LoraExperimentSources Default(string shakespearePath, int syntheticBytes = 1_000_000)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(shakespearePath);
        return new LoraExperimentSources(new CorpusSource { Bytes = syntheticBytes, Seed = 0 },
        [
            CorpusSource.FromFile(shakespearePath, "shakespeare"),
            CorpusSource.FromFile(shakespearePath, "shakespeare-reversed-lines", transform: "reverse-lines"),
            CorpusSource.FromFile(shakespearePath, "shakespeare-uppercase", transform: "uppercase"),
        ]);
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming the first invalid corpus.</summary>
    public LoraExperimentSources Validate()
    {
        if (Pretrain is null) throw new InvalidDataException("The LoRA experiment's corpora need a \"pretrain\" corpus (A).");
        if (Tasks is null || Tasks.Count == 0) throw new InvalidDataException("The LoRA experiment's corpora need at least one task in \"tasks\" (B, the fine-tuning target).");
        Check(Pretrain, "the pre-training corpus");
        for (int i = 0; i < Tasks.Count; i++) Check(Tasks[i] ?? throw new InvalidDataException($"Task {i} of the LoRA experiment's corpora is empty."), $"task {i}");
        return this;

        static void Check(CorpusSource source, string what)
        {
            try { source.Validate(); }
            catch (InvalidDataException e) { throw new InvalidDataException($"In the LoRA experiment's corpora, {what}: {e.Message}"); }
        }
    }

    /// <summary>Builds the corpora.</summary>
    public LoraExperimentCorpora Load()
    {
        Validate();
        return new LoraExperimentCorpora(Pretrain.Load(), Tasks.Select(t => t.Load()).ToList());
    }
}

/// <summary>
/// The full-vs-LoRA experiment (<see cref="LoraExperiment"/>) as data, kind <c>lora-experiment</c>: stage 0 pre-trains
/// on A (one run, key <see cref="PretrainKey"/>, a <see cref="LoraPretrainRecord"/>, its weights in the store's
/// checkpoint of that key); stage 1 fine-tunes every method at every learning rate of its grid on B (one
/// <see cref="LoraRunRecord"/> each, keys as in earlier versions); stage 2 trains full fine-tuning and
/// <see cref="LoraExperimentOptions.SequentialRanks"/> on B -> C -> D at the learning rate selected from stage 1's records
/// (one <see cref="LoraSequenceRecord"/> each; the rate is chosen when the stage runs, so it is in the record, not the
/// key). The same worker runs it as a proxy sweep: here (<see cref="LoraExperiment.Run(LoraExperimentSpec, TorchSharp.torch.Device, string?, IProgressSink?, int?, CancellationToken)"/>,
/// or a sweeps folder) or as Slurm job arrays, one per stage; <see cref="Collect"/> reads the
/// <see cref="LoraExperimentResult"/> back from the store.
/// </summary>
public sealed class LoraExperimentSpec : IExperiment
{
    /// <summary>The key of the pre-training run (stage 0): the store's identity fixes every setting it depends on.</summary>
    public static readonly string PretrainKey = RunKeys.Of(new LoraPretrainKey("pretrain"), LoraJson.Default.LoraPretrainKey);

    private LoraExperimentCorpora? _corpora;
    private IReadOnlyList<PlannedRun>? _runs;

    /// <summary>An experiment whose corpora are described by <paramref name="sources"/> (built when first needed).</summary>
    /// <param name="name">The experiment's name (a spec's name; the store's identity is that of earlier versions and does not hold it).</param>
    /// <param name="options">Settings (<see cref="LoraExperimentOptions.Workers"/> is a runtime setting: ignored here, see <see cref="ExperimentContext.Workers"/>).</param>
    /// <param name="sources">The corpora.</param>
    public LoraExperimentSpec(string name, LoraExperimentOptions options, LoraExperimentSources sources)
    {
        Name = string.IsNullOrWhiteSpace(name) ? LoraExperiment.StoreKind : name;
        Options = options ?? throw new ArgumentNullException(nameof(options));
        Sources = sources ?? throw new ArgumentNullException(nameof(sources));
    }

    private LoraExperimentSpec(string name, LoraExperimentOptions options, LoraExperimentCorpora corpora)
    {
        Name = name;
        Options = options;
        _corpora = corpora;
    }

    /// <summary>
    /// An experiment on corpora already loaded in this process (e.g. built from strings): it runs and collects like
    /// any other, but has no <see cref="Sources"/>, so it cannot be written as a spec for other processes.
    /// </summary>
    public static LoraExperimentSpec InProcess(LoraExperimentOptions options, LoraExperimentCorpora corpora, string name = LoraExperiment.StoreKind)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(corpora);
        return new LoraExperimentSpec(name, options, corpora);
    }

    /// <inheritdoc />
    public string Kind => LoraExperiment.StoreKind;

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>The settings.</summary>
    public LoraExperimentOptions Options { get; }

    /// <summary>Where the corpora come from (null for an <see cref="InProcess"/> experiment).</summary>
    public LoraExperimentSources? Sources { get; }

    /// <summary>The corpora, built once.</summary>
    public LoraExperimentCorpora LoadCorpora() => _corpora ??= Sources!.Load();

    private int TaskCount => _corpora?.Tasks.Count ?? Sources?.Tasks.Count ?? 0;

    /// <summary>Stage 1's runs: every method at every rate of its grid, in the grid's order (full, then each rank: LoRA, rsLoRA).</summary>
    internal IReadOnlyList<(int Rank, bool Rs, double Lr, string Key)> TargetJobs()
    {
        var methods = new List<(int Rank, bool Rs)> { (0, false) };
        foreach (int r in Options.Ranks)
        {
            methods.Add((r, false));
            if (Options.IncludeRsLora) methods.Add((r, true));
        }
        return methods.SelectMany(m => (m.Rank == 0 ? Options.FullLearningRates : Options.LoraLearningRates)
            .Select(lr => (m.Rank, m.Rs, lr, RunKeys.Of(new LoraTargetKey("target", m.Rank, m.Rs, lr), LoraJson.Default.LoraTargetKey)))).ToList();
    }

    /// <summary>Stage 2's runs: full fine-tuning, then each of <see cref="LoraExperimentOptions.SequentialRanks"/> (none without steps or a second task).</summary>
    internal IReadOnlyList<(int Rank, string Key)> SequenceJobs() =>
        Options.SequentialSteps > 0 && TaskCount > 1
            ? new[] { 0 }.Concat(Options.SequentialRanks).Select(rank => (rank, SequenceKey(rank))).ToList()
            : [];

    /// <summary>The key of the task sequence of <paramref name="rank"/> (its learning rate is chosen at run time: <c>"selected"</c>).</summary>
    public static string SequenceKey(int rank) => RunKeys.Of(new LoraSelectedSequenceKey("sequence", rank, "selected"), LoraJson.Default.LoraSelectedSequenceKey);

    /// <inheritdoc />
    public IReadOnlyList<PlannedRun> Runs => _runs ??= Plan();

    private List<PlannedRun> Plan()
    {
        var runs = new List<PlannedRun> { new(PretrainKey, 0, Config(new LoraPretrainKey("pretrain"), LoraJson.Default.LoraPretrainKey, PretrainKey, 0)) };
        foreach (var (rank, rs, lr, key) in TargetJobs())
            runs.Add(new PlannedRun(key, 1, Config(new LoraTargetKey("target", rank, rs, lr), LoraJson.Default.LoraTargetKey, key, 1)));
        foreach (var (rank, key) in SequenceJobs())
            runs.Add(new PlannedRun(key, 2, Config(new LoraSelectedSequenceKey("sequence", rank, "selected"), LoraJson.Default.LoraSelectedSequenceKey, key, 2)));
        return runs;
    }

    // A run's configuration as the spec lists it: the fields its key hashes, then the key and the stage.
    private static JsonObject Config<T>(T key, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo, string hash, int stage)
    {
        var node = JsonSerializer.SerializeToNode(key, typeInfo)!.AsObject();
        node["key"] = hash;
        node["stage"] = stage;
        return node;
    }

    /// <inheritdoc />
    public void Validate()
    {
        try { Options.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"The LoRA experiment's options are not valid: {e.Message}"); }
        if (_corpora is null) Sources!.Validate();
        else if (_corpora.Tasks.Count == 0) throw new InvalidDataException("The LoRA experiment needs at least one fine-tuning task (B).");
    }

    /// <inheritdoc />
    public JsonObject ToJson()
    {
        if (Sources is null)
            throw new InvalidOperationException("This LoRA experiment was built from corpora loaded in this process (LoraExperimentSpec.InProcess); a spec " +
                                                "for other processes needs corpus sources: use new LoraExperimentSpec(name, options, LoraExperimentSources...).");
        var options = JsonSerializer.SerializeToNode(Options, LoraJson.Default.LoraExperimentOptions)!.AsObject();
        options.Remove("workers"); // a runtime setting of whoever runs the spec (ExperimentContext.Workers), not part of the experiment
        return new JsonObject
        {
            ["options"] = options,
            ["corpora"] = JsonSerializer.SerializeToNode(Sources, LoraJson.Default.LoraExperimentSources),
            ["runs"] = new JsonArray(Runs.Select(r => (JsonNode)r.Config.DeepClone()).ToArray()),
        };
    }

    /// <inheritdoc />
    public JsonObject StoreIdentity() => LoraExperiment.Identity(Options, LoadCorpora());

    /// <inheritdoc />
    public void Run(IReadOnlyList<PlannedRun> runs, ExperimentContext context)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(context);
        var stages = runs.Select(r => r.Stage).Distinct().ToList();
        if (stages.Count > 1) throw new ArgumentException($"Runs of one stage at a time; got stages {string.Join(", ", stages)}.", nameof(runs));
        var planned = Runs.Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        if (runs.FirstOrDefault(r => !planned.Contains(r.Key)) is { } stranger)
            throw new ArgumentException($"Run {stranger.Key} is not a run of this LoRA experiment.", nameof(runs));
        switch (stages.SingleOrDefault())
        {
            case 0: LoraExperiment.RunPretrainStage(this, context); break;
            case 1: LoraExperiment.RunTargetStage(this, runs.Select(r => r.Key).ToHashSet(StringComparer.Ordinal), context); break;
            default: LoraExperiment.RunSequenceStage(this, runs.Select(r => r.Key).ToHashSet(StringComparer.Ordinal), context); break;
        }
    }

    /// <inheritdoc />
    public object Collect(RunStore store) => LoraExperiment.Collect(this, store);

    /// <summary>
    /// Reads the body of a spec (<c>options</c>, <c>corpora</c>, <c>runs</c>); <paramref name="read"/> turns deserialisation
    /// errors into messages. The runs follow from the options: each listed run must be the one the options plan at its
    /// position, so an edited run is rejected (edit the options instead).
    /// </summary>
    public static LoraExperimentSpec FromJson(string name, JsonObject body, Func<Func<object?>, string, object?> read)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(read);
        if (body["options"] is not JsonObject) throw new InvalidDataException("A lora-experiment spec needs an \"options\" object.");
        if (body["corpora"] is not JsonObject) throw new InvalidDataException("A lora-experiment spec needs a \"corpora\" object (pretrain, tasks).");
        var options = (LoraExperimentOptions?)read(() => body["options"]!.Deserialize(LoraJson.Default.LoraExperimentOptions), "options")
                      ?? throw new InvalidDataException("The spec's \"options\" are empty.");
        var sources = (LoraExperimentSources?)read(() => body["corpora"]!.Deserialize(LoraJson.Default.LoraExperimentSources), "corpora")
                      ?? throw new InvalidDataException("The spec's \"corpora\" are empty.");
        var experiment = new LoraExperimentSpec(name, options with { Workers = null }, sources);
        experiment.Validate();
        if (body["runs"] is not JsonArray listed) throw new InvalidDataException("The spec has no \"runs\" list.");
        var planned = experiment.Runs;
        if (listed.Count != planned.Count)
            throw new InvalidDataException($"{listed.Count} runs are listed but the options plan {planned.Count} (1 pre-training, {experiment.TargetJobs().Count} target runs, " +
                                           $"{experiment.SequenceJobs().Count} task sequences); a LoRA experiment's runs follow from its options.");
        for (int i = 0; i < listed.Count; i++)
        {
            string Fields(JsonNode? node)
            {
                var copy = node is JsonObject o ? o.DeepClone().AsObject() : new JsonObject();
                copy.Remove("key");
                copy.Remove("stage");
                // Numbers as doubles, so spellings (1e-3, 0.001) do not matter.
                foreach (var (field, value) in copy.ToList())
                    if (value is JsonValue v && v.GetValueKind() == JsonValueKind.Number) copy[field] = v.GetValue<double>();
                return copy.ToJsonString();
            }
            if (Fields(listed[i]) != Fields(planned[i].Config))
                throw new InvalidDataException($"Run {i} ({listed[i]?.ToJsonString()}) is not the run the options plan at that position " +
                                               $"({planned[i].Config.ToJsonString()}): a LoRA experiment's runs follow from its options; edit the options, not the runs.");
        }
        return experiment;
    }
}
