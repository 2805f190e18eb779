using System.Text.Json;
using ScalingInteractive.Commands;
using ScalingInteractive.Display;
using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Proxies;
using ScalingInteractive.Sweeps;
using ScalingInteractive.Tests.Commands;
using ScalingInteractive.Tests.Fitting;
using ScalingInteractive.Tests.Sweeps;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Hosting;

/// <summary>
/// Every path of the library that writes or reads JSON, run in a child process whose runtime configuration turns
/// reflection-based serialisation and dynamic code off, as a C# file-based app's does (PublishAot=true): started by
/// ReflectionFreeTests as <c>dotnet exec --runtimeconfig ... ScalingInteractive.Tests.dll json-probe DIR</c>. Prints
/// one "ok STEP" line per step; the first failure ends the process with exit code 1 and its message.
/// </summary>
internal static class ReflectionFreeProbe
{
    public static int Run(string work)
    {
        Console.WriteLine($"reflection={JsonSerializer.IsReflectionEnabledByDefault} dynamic-code={System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported}");
        try
        {
            Step("fit results", () =>
            {
                foreach (var result in FittingSamples.All().Cast<IRichResult>()) Use(result);
            });
            Step("scaling-fit command", () =>
            {
                string csv = Path.Combine(work, "points.csv");
                File.WriteAllText(csv, "N,loss\n1e6,4.1\n1e7,3.5\n1e8,3.1\n1e9,2.8\n");
                var host = new TestHost();
                CommandCatalog.InvokeAsync($"#!scaling-fit --law power --data \"{csv}\" --x N --y loss --bootstrap 20 --name fit", host).GetAwaiter().GetResult();
                Use((IRichResult)host.Variables["fit"]!);
            });
            Step("help and progress", () =>
            {
                var host = new TestHost();
                CommandCatalog.InvokeAsync("#!scaling-help", host).GetAwaiter().GetResult();
                Use((IRichResult)host.Shown[0].Value);
                var progress = new ProgressDisplay("probe", 3, null);
                progress.Report(2, "two", "best");
                JsonDocument.Parse(progress.ToJson()).Dispose();
            });
            Step("proxy-train command", () =>
            {
                var host = new TestHost();
                CommandCatalog.InvokeAsync("#!proxy-train --width 16 --head-dim 8 --lr 3e-3 --steps 4 --batch-size 2 --seq-len 16 --device cpu --corpus synthetic --name r", host)
                    .GetAwaiter().GetResult();
                Use((IRichResult)host.Variables["r"]!);
            });
            Step("sweep spec, worker and store", () =>
            {
                var spec = ProxySweepCommand.ToSweepSpec("#!proxy-sweep --widths [16] --head-dim 8 --learning-rates [1e-3,1e-2] --steps 4 --batch-size 2 --seq-len 16");
                string path = spec.Save(Path.Combine(work, "spec.json"));
                var loaded = SweepSpec.Load(path);
                if (!loaded.Keys.SequenceEqual(spec.Keys)) throw new InvalidOperationException("the spec's keys changed on the round trip");
                string store = Path.Combine(work, "store");
                var written = SweepWorker.RunShard(loaded, 0, 1, store);
                var result = ProxySweepResult.FromStore(loaded.OpenStore(store));
                if (result.Rows.Count != 2) throw new InvalidOperationException($"{result.Rows.Count} rows read back, 2 written");
                Use(result);
                var handle = new SweepHandle { Folder = work, Shards = 1 };
                handle.Save();
                SweepHandle.Load(work);
                JsonDocument.Parse(SweepFixtures.StatusSample().ToJson()).Dispose();
            });
            Step("lora experiment and resume", () =>
            {
                string store = Path.Combine(work, "lora.jsonl");
                var options = new LoraExperimentOptions
                {
                    Model = new ProxyModelConfig { Width = 16, Depth = 1, Heads = 2, ContextLength = 16 },
                    PretrainSteps = 4, FineTuneSteps = 3, SequentialSteps = 2, BatchSize = 2, SequenceLength = 16,
                    FullLearningRates = [1e-3], LoraLearningRates = [1e-2], Ranks = [2], SequentialRanks = [2], EvaluationBatches = 1,
                    Intruders = new IntruderOptions { TopK = 2 }, Workers = 1,
                };
                string text = string.Concat(Enumerable.Repeat("the cat sat on the mat. ", 100));
                var corpora = new LoraExperimentCorpora(TextCorpus.FromText("A", text),
                    [TextCorpus.FromText("B", text.ToUpperInvariant()), TextCorpus.FromText("C", new string(text.Reverse().ToArray()))]);
                var first = LoraExperiment.Run(options, corpora, CPU, store);
                var again = LoraExperiment.Run(options, corpora, CPU, store); // every record read back from the store
                if (again.Runs.Count != first.Runs.Count) throw new InvalidOperationException("the LoRA store did not read back");
                Use(again);
            });
            if (Directory.Exists(RepoPaths.SharedData))
                Step("intrinsic-dim command and resume", () =>
                {
                    string line = $"#!intrinsic-dim mnist-mlp --dims [20] --projection fastfood --seeds [0] --steps 3 --batch-size 16 --data-dir \"{RepoPaths.SharedData}\" " +
                                  $"--bootstrap 10 --device cpu --store \"{Path.Combine(work, "intrinsic.jsonl")}\" --name report";
                    CommandCatalog.InvokeAsync(line, new TestHost()).GetAwaiter().GetResult();
                    var host = new TestHost();
                    CommandCatalog.InvokeAsync(line, host).GetAwaiter().GetResult(); // read back from the store
                    Use((IRichResult)host.Variables["report"]!);
                });
            if (Directory.Exists(RepoPaths.SharedData))
                Step("intrinsic-dimension experiment spec, stages and collect", () =>
                {
                    var task = ScalingInteractive.IntrinsicDimension.IntrinsicTaskSpec.For("lm", new ScalingInteractive.IntrinsicDimension.IntrinsicTaskOptions
                        { DataDirectory = RepoPaths.SharedData, Width = 16, Depth = 1, PretrainSteps = 3, SequenceLength = 16 });
                    var sweep = new ScalingInteractive.IntrinsicDimension.IntrinsicSweepOptions([4], [ScalingInteractive.IntrinsicDimension.ProjectionKind.Fastfood], 1,
                        new ScalingInteractive.IntrinsicDimension.SubspaceTrainingOptions(Steps: 2, BatchSize: 2), Resamples: 5) { Workers = 1 };
                    var spec = SweepSpec.For(ScalingInteractive.IntrinsicDimension.IntrinsicDimensionExperiment.Create("probe", task, sweep));
                    var loaded = SweepSpec.Load(spec.Save(Path.Combine(work, "intrinsic-spec.json")));
                    if (!loaded.Keys.SequenceEqual(spec.Keys)) throw new InvalidOperationException("the intrinsic spec's keys changed on the round trip");
                    var handle = LocalSweeps.Run(loaded, Path.Combine(work, "intrinsic-sweep"));
                    Use((IRichResult)SlurmSweeps.Collect(handle));
                });
            Console.WriteLine("json-probe done");
            return 0;
        }
        catch (Exception e)
        {
            Console.WriteLine("json-probe failed: " + e);
            return 1;
        }
    }

    private static void Step(string name, Action step)
    {
        step();
        Console.WriteLine("ok " + name);
    }

    // What a notebook, a formatter or a caller does with a result: JSON (parsed back), HTML (charts included) and text.
    private static void Use(IRichResult result)
    {
        JsonDocument.Parse(result.ToJson()).Dispose();
        if (result.ToHtml().Length == 0 || result.ToText().Length == 0) throw new InvalidOperationException(result.GetType().Name + " rendered nothing");
    }
}
