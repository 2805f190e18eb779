using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using ScalingInteractive.Commands;

namespace ScalingInteractive.Runs;

/// <summary>
/// The resumable sweep over a <see cref="RunStore"/> that every experiment uses: a run whose key the store holds is
/// read back, any other is trained and appended (flushed) as soon as it ends, so a restarted sweep skips finished runs.
/// A run's key is one function of its configuration (<see cref="RunKeys.Of(JsonNode)"/> of a config record), the same from
/// every entry point.
/// </summary>
public static class RunSweep
{
    /// <summary>
    /// The record of <paramref name="key"/>: from <paramref name="store"/> when it holds it (<paramref name="fromStore"/>
    /// true), else <paramref name="run"/>() appended to the store (a null store only runs).
    /// </summary>
    public static T GetOrRun<T>(this RunStore? store, string key, Func<T> run, out bool fromStore) where T : notnull
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(run);
        if (typeof(T) != typeof(JsonObject)) RunStore.EnsureReflection($"GetOrRun<{typeof(T).Name}> without a JsonTypeInfo");
        if (store?.Find(key) is { } stored)
        {
            fromStore = true;
            return typeof(T) == typeof(JsonObject) ? (T)(object)stored : stored.Deserialize<T>(RunStore.JsonOptions)!;
        }
        fromStore = false;
        var record = run();
        store?.Append(record);
        return record;
    }

    /// <summary>
    /// As <see cref="GetOrRun{T}(RunStore?, string, Func{T}, out bool)"/>, reading and writing the record through
    /// <paramref name="typeInfo"/> (null for <see cref="JsonObject"/> records): works where reflection is off.
    /// </summary>
    public static T GetOrRun<T>(this RunStore? store, string key, Func<T> run, JsonTypeInfo<T>? typeInfo, out bool fromStore) where T : notnull
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(run);
        if (typeInfo is null && typeof(T) != typeof(JsonObject)) throw new ArgumentNullException(nameof(typeInfo), $"A {typeof(T).Name} record needs its JsonTypeInfo.");
        if (store?.Find(key) is { } stored)
        {
            fromStore = true;
            return typeInfo is null ? (T)(object)stored : stored.Deserialize(typeInfo)!;
        }
        fromStore = false;
        var record = run();
        if (store is not null)
        {
            if (typeInfo is null) store.Append(record);
            else store.Append(record, typeInfo);
        }
        return record;
    }

    /// <summary>
    /// Runs every spec whose key the store lacks, in groups: <paramref name="groupOf"/> gives specs that run together
    /// (e.g. the members of one ensemble; null: one at a time) and <paramref name="runGroup"/> returns one record per spec
    /// of the group, in order, each appended as soon as the group ends. Returns every spec's record (old and new), in
    /// order. <paramref name="progress"/> gets runs done/total.
    /// </summary>
    public static IReadOnlyList<JsonObject> Run<TSpec>(IReadOnlyList<TSpec> specs, Func<TSpec, string> keyOf, RunStore store,
        Func<IReadOnlyList<TSpec>, IReadOnlyList<JsonObject>> runGroup, Func<TSpec, object>? groupOf = null,
        IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(specs);
        ArgumentNullException.ThrowIfNull(keyOf);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(runGroup);
        var todo = specs.Where(s => !store.Contains(keyOf(s))).DistinctBy(keyOf).ToList();
        int done = specs.Count - todo.Count;
        progress?.Report(done, $"{done}/{specs.Count} runs already in the store");
        var groups = groupOf is null ? todo.Select(s => (IReadOnlyList<TSpec>)[s]) : todo.GroupBy(groupOf).Select(g => (IReadOnlyList<TSpec>)g.ToList());
        foreach (var group in groups)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var records = runGroup(group);
            if (records.Count != group.Count) throw new InvalidOperationException($"A group of {group.Count} runs returned {records.Count} records.");
            foreach (var record in records) store.Append(record);
            done += group.Count;
            progress?.Report(done, $"{done}/{specs.Count} runs");
        }
        return specs.Select(s => store.Find(keyOf(s))).Where(r => r is not null).Select(r => r!).ToList();
    }
}
