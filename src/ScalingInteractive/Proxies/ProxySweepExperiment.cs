using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Proxies;

/// <summary>
/// A proxy sweep as an experiment (data): its runs (each a <see cref="ProxyRunSpec"/>, one stage) and the corpus they
/// train on. Runs that share a shape train as one ensemble (<see cref="ProxySweep.Run"/>); the result is a
/// <see cref="ProxySweepResult"/>.
/// </summary>
/// <param name="Name">The sweep's name (part of the store's identity).</param>
/// <param name="Corpus">The text every run trains on.</param>
/// <param name="ProxyRuns">The runs, in order.</param>
public sealed record ProxySweepExperiment(string Name, CorpusSource Corpus, IReadOnlyList<ProxyRunSpec> ProxyRuns) : IExperiment
{
    private TextCorpus? _corpus;

    /// <inheritdoc />
    public string Kind => ProxySweep.StoreKind;

    /// <inheritdoc />
    public IReadOnlyList<PlannedRun> Runs => ProxyRuns.Select(r => new PlannedRun(r.Key, 0, ToNode(r))).ToList();

    /// <summary>The corpus, built once.</summary>
    public TextCorpus LoadCorpus() => _corpus ??= Corpus.Load();

    /// <inheritdoc />
    public void Validate()
    {
        if (ProxyRuns.Count == 0) throw new InvalidDataException("The sweep has no runs.");
        Corpus.Validate();
        for (int i = 0; i < ProxyRuns.Count; i++)
        {
            var run = ProxyRuns[i] ?? throw new InvalidDataException($"Run {i} of the sweep is empty.");
            try
            {
                run.Model.Validate();
                run.Training.Validate();
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"Run {i} of the sweep ({run.Experiment}, {run.Setting}) is not valid: {e.Message}");
            }
        }
    }

    /// <inheritdoc />
    public JsonObject ToJson() => new()
    {
        ["corpus"] = JsonSerializer.SerializeToNode(Corpus, ProxiesJson.Default.CorpusSource),
        ["runs"] = new JsonArray(ProxyRuns.Select(r => (JsonNode)ToNode(r)).ToArray()),
    };

    /// <inheritdoc />
    public JsonObject StoreIdentity() => ProxySweep.StoreIdentity(LoadCorpus(), Name);

    /// <inheritdoc />
    public void Run(IReadOnlyList<PlannedRun> runs, ExperimentContext context)
    {
        var byKey = ProxyRuns.ToDictionary(r => r.Key);
        ProxySweep.Run(runs.Select(r => byKey[r.Key]).ToList(), LoadCorpus(), context.Device, context.Store, context.Progress, context.CancellationToken, workers: context.Workers);
    }

    /// <inheritdoc />
    public object Collect(RunStore store) => ProxySweepResult.FromStore(store);

    /// <summary>Reads the body of a spec (<c>corpus</c>, <c>runs</c>); <paramref name="read"/> turns deserialisation errors into messages.</summary>
    public static ProxySweepExperiment FromJson(string name, JsonObject body, Func<Func<object?>, string, object?> read)
    {
        var corpus = (CorpusSource?)read(() => body["corpus"]?.Deserialize(ProxiesJson.Default.CorpusSource), "corpus") ?? new CorpusSource();
        if (body["runs"] is not JsonArray array) throw new InvalidDataException("The spec has no \"runs\" list.");
        var runs = array.Select((node, i) => (ProxyRunSpec?)read(() => node?.Deserialize(ProxiesJson.Default.ProxyRunSpec), $"run {i}")
                                             ?? throw new InvalidDataException($"Run {i} is empty.")).ToList();
        return new ProxySweepExperiment(name, corpus, runs);
    }

    private static JsonObject ToNode(ProxyRunSpec run)
    {
        var node = JsonSerializer.SerializeToNode(run, ProxiesJson.Default.ProxyRunSpec)!.AsObject();
        node["stage"] = 0;
        return node;
    }
}
