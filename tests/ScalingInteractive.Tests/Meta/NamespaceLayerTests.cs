using Mono.Cecil;
using Mono.Cecil.Cil;
using Xunit.Abstractions;

namespace ScalingInteractive.Tests.Meta;

/// <summary>
/// The library's namespaces form layers: a leaf core, then runs and training, the capabilities, sweeps, and the command
/// layer on top (issue 17). Read from the compiled IL (every type, member signature, attribute and instruction operand),
/// so a fully qualified reference counts as much as a <c>using</c>.
/// </summary>
public class NamespaceLayerTests(ITestOutputHelper output)
{
    private const string Root = "ScalingInteractive";

    /// <summary>Namespace -> the other library namespaces it references.</summary>
    internal static Dictionary<string, SortedSet<string>> DependencyGraph()
    {
        using var module = ModuleDefinition.ReadModule(typeof(ScalingInteractive.Core.TorchScalars).Assembly.Location);
        var graph = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var type in module.GetTypes())
        {
            string from = NamespaceOf(type);
            if (!from.StartsWith(Root, StringComparison.Ordinal) || type.Name == "<Module>") continue;
            if (!graph.TryGetValue(from, out var edges)) graph[from] = edges = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var referenced in ReferencedTypes(type))
            {
                string to = NamespaceOf(referenced);
                if (to != from && to.StartsWith(Root, StringComparison.Ordinal) && referenced.Scope == module) edges.Add(to);
            }
        }
        return graph;
    }

    private static string NamespaceOf(TypeReference type)
    {
        while (type.DeclaringType is not null) type = type.DeclaringType;
        return type.Namespace;
    }

    private static IEnumerable<TypeReference> ReferencedTypes(TypeDefinition type)
    {
        IEnumerable<TypeReference> Expand(TypeReference? t)
        {
            if (t is null) yield break;
            yield return t.GetElementType();
            if (t is GenericInstanceType g) foreach (var a in g.GenericArguments.SelectMany(Expand)) yield return a;
        }
        IEnumerable<TypeReference> Attributes(ICustomAttributeProvider p) =>
            p.HasCustomAttributes ? p.CustomAttributes.SelectMany(a => Expand(a.AttributeType).Concat(a.ConstructorArguments.Select(c => c.Value).OfType<TypeReference>().SelectMany(Expand))) : [];
        var all = new List<TypeReference>();
        all.AddRange(Expand(type.BaseType));
        all.AddRange(type.Interfaces.SelectMany(i => Expand(i.InterfaceType)));
        all.AddRange(Attributes(type));
        foreach (var f in type.Fields) { all.AddRange(Expand(f.FieldType)); all.AddRange(Attributes(f)); }
        foreach (var p in type.Properties) { all.AddRange(Expand(p.PropertyType)); all.AddRange(Attributes(p)); }
        foreach (var m in type.Methods)
        {
            all.AddRange(Expand(m.ReturnType));
            all.AddRange(m.Parameters.SelectMany(p => Expand(p.ParameterType)));
            all.AddRange(Attributes(m));
            if (!m.HasBody) continue;
            all.AddRange(m.Body.Variables.SelectMany(v => Expand(v.VariableType)));
            foreach (var i in m.Body.Instructions)
                switch (i.Operand)
                {
                    case MethodReference r:
                        all.AddRange(Expand(r.DeclaringType));
                        all.AddRange(Expand(r.ReturnType));
                        all.AddRange(r.Parameters.SelectMany(p => Expand(p.ParameterType)));
                        if (r is GenericInstanceMethod gm) all.AddRange(gm.GenericArguments.SelectMany(Expand));
                        break;
                    case FieldReference f: all.AddRange(Expand(f.DeclaringType)); all.AddRange(Expand(f.FieldType)); break;
                    case TypeReference t: all.AddRange(Expand(t)); break;
                }
        }
        return all.Where(t => t is not GenericParameter);
    }

    /// <summary>The strongly connected components with more than one namespace (each is a dependency cycle).</summary>
    internal static List<List<string>> Cycles(Dictionary<string, SortedSet<string>> graph)
    {
        int index = 0;
        var indices = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var result = new List<List<string>>();
        void Visit(string v)
        {
            indices[v] = low[v] = index++;
            stack.Push(v);
            onStack.Add(v);
            foreach (string w in graph.GetValueOrDefault(v) ?? [])
            {
                if (!indices.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                else if (onStack.Contains(w)) low[v] = Math.Min(low[v], indices[w]);
            }
            if (low[v] != indices[v]) return;
            var component = new List<string>();
            string x;
            do { x = stack.Pop(); onStack.Remove(x); component.Add(x); } while (x != v);
            if (component.Count > 1) result.Add(component.Order(StringComparer.Ordinal).ToList());
        }
        foreach (string v in graph.Keys.Order(StringComparer.Ordinal)) if (!indices.ContainsKey(v)) Visit(v);
        return result;
    }

    [Fact]
    public void Library_namespaces_have_no_dependency_cycle()
    {
        var graph = DependencyGraph();
        foreach (var (from, to) in graph.OrderBy(p => p.Key, StringComparer.Ordinal))
            output.WriteLine($"{from} -> {string.Join(", ", to)}");
        var cycles = Cycles(graph);
        Assert.True(cycles.Count == 0, "namespace cycles: " + string.Join("; ", cycles.Select(c => string.Join(" <-> ", c))));
    }

    /// <summary>
    /// The layers, bottom first (issue 17 item 2): a namespace may reference only namespaces of lower layers, so the
    /// capabilities do not reach into each other, nothing below the command layer calls a command class, and a new
    /// namespace must be placed here.
    /// </summary>
    internal static readonly string[][] Layers =
    [
        ["Core", "Plotting"],                          // progress, schedules, divergence rule; the Plotly bridge
        ["Runs", "Training", "Hosting", "Display", "Checkpoints"], // store and experiments, the one trainer, TorchSharp loading, formatters, safetensors
        ["Proxies"],                                   // the one model class and its corpora
        ["Fitting", "IntrinsicDimension", "LoraSpectra"], // the capabilities
        ["Claims", "Sweeps"],                          // claim judges over capability results; experiments as specs, worker, Slurm
        ["Commands"],                                  // magic commands: thin shells over everything below
    ];

    [Fact]
    public void Every_reference_goes_to_a_lower_layer()
    {
        var layerOf = Layers.SelectMany((names, layer) => names.Select(n => (Name: $"{Root}.{n}", Layer: layer))).ToDictionary(p => p.Name, p => p.Layer);
        var graph = DependencyGraph();
        var unplaced = graph.Keys.Where(n => n != Root && !layerOf.ContainsKey(n)).ToList();
        Assert.True(unplaced.Count == 0, "namespaces not placed in a layer (add them to NamespaceLayerTests.Layers): " + string.Join(", ", unplaced));
        var upward = graph.Where(p => layerOf.ContainsKey(p.Key))
            .SelectMany(p => p.Value.Where(to => layerOf.ContainsKey(to) && layerOf[to] >= layerOf[p.Key]).Select(to => $"{p.Key} -> {to}")).ToList();
        foreach (string edge in upward) output.WriteLine(edge);
        Assert.True(upward.Count == 0, "references to the same or a higher layer: " + string.Join("; ", upward));
    }
}
