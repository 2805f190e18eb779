using System.Collections.Immutable;
using System.Text.Json;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Hosting;
using ScalingInteractive.Display;
using ScalingInteractive.Core;
using ScalingInteractive.Fitting;

namespace ScalingInteractive.Commands;

/// <summary>
/// <c>#!scaling-fit</c>: fits a law of the catalogue to data held in a C# variable (FitData, DataFrame, RunStore,
/// a dictionary of columns, or a sequence of records) or a CSV file, with optional bootstrap and held-out points,
/// shows the result and stores it in a C# variable.
/// </summary>
public sealed class ScalingFitCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!scaling-fit";

    /// <inheritdoc />
    public override string Description =>
        "Fits a scaling law (Huber loss on log values, multi-start L-BFGS, bootstrap CIs, held-out check) to data in a C# variable or a CSV file.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--law", typeof(string), "Law to fit.") { Required = true, AllowImplicitName = true, AllowedValues = ScalingLaws.Names },
        new("--data", typeof(string), "The data to fit: the bare name of a C# variable (FitData, DataFrame, RunStore, Dictionary<string,double[]>, records) or a CSV file path.")
            { Required = true, AcceptsVariable = true },
        new("--x", typeof(string), "Input columns in the law's order: a JSON list [\"N\",\"D\"] or N,D (default: the law's input names)."),
        new("--y", typeof(string), "Observed column (default: loss).") { Default = "loss" },
        SharedParameters.Bootstrap,
        new("--holdout", typeof(string), "Hold out the points matching a filter such as N>1e9 and report the extrapolation error on them."),
        new("--loss", typeof(string), "Loss on log residuals.") { Default = "huber", AllowedValues = ["huber", "squared", "cauchy"] },
        new("--delta", typeof(double), "Scale of the Huber or Cauchy loss.") { Default = 1e-3, Minimum = 1e-12 },
        SharedParameters.Seed with { Description = "Bootstrap seed." },
        new("--level", typeof(double), "Confidence level of the intervals.") { Default = 0.95, Minimum = 0.5, Maximum = 0.999 },
        new("--optimizer", typeof(string), "L-BFGS implementation.") { Default = "lbfgs", AllowedValues = ["lbfgs", "mathnet"] },
        SharedParameters.Name("ScalingLawFit"),
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var law = ScalingLaws.Get(arguments.Get<string>("--law"));
        var x = ParseColumns(arguments.Get<string>("--x")) ?? [.. law.Inputs.Select(i => i.Name)];
        string y = arguments.Get<string>("--y") ?? "loss";
        var data = FitData.From(arguments.GetVariableOrPath("--data", host, DataKinds)!, x, y);
        var options = new FitOptions
        {
            Loss = Enum.Parse<LossKind>(arguments.Get<string>("--loss"), ignoreCase: true),
            Delta = arguments.Get<double>("--delta"),
            Optimizer = string.Equals(arguments.Get<string>("--optimizer"), "mathnet", StringComparison.OrdinalIgnoreCase) ? OptimizerKind.MathNet : OptimizerKind.Lbfgs,
            CancellationToken = host.CancellationToken,
        };
        var gridProgress = host.CreateProgress($"#!scaling-fit {law.Name}: start grid", law.StartGridSize);
        options = options with { Progress = gridProgress };
        string? holdout = arguments.Get<string>("--holdout");
        var fit = await Task.Run(() =>
        {
            if (holdout is null) return ScalingFit.Fit(law, data, options);
            var filter = PointFilter.Parse(holdout, data.XNames.Append(data.YName).ToArray()).Matches(data);
            return ScalingFit.Extrapolate(law, data, point => !filter(point), options, "not " + holdout);
        }, host.CancellationToken);
        gridProgress.Complete($"{fit.StartsConverged} of {fit.StartsTried} starts converged to {fit.DistinctOptima} distinct optima");
        int resamples = arguments.Get<int>("--bootstrap");
        if (resamples > 0)
        {
            var bootProgress = host.CreateProgress($"#!scaling-fit {law.Name}: bootstrap", resamples);
            var bootOptions = new BootstrapOptions
            {
                Resamples = resamples, Seed = arguments.Get<int>("--seed"), Level = arguments.Get<double>("--level"),
                CancellationToken = host.CancellationToken, Progress = bootProgress,
            };
            var withBootstrap = await Task.Run(() => ScalingFit.Bootstrap(fit, bootOptions), host.CancellationToken);
            fit = withBootstrap;
            bootProgress.Complete($"{fit.Bootstrap!.Converged} of {resamples} resamples converged");
        }
        host.Display(fit);
        if (arguments.Get<string>("--name") is { Length: > 0 } name) await host.SetVariableAsync(name, fit, typeof(ScalingLawFit));
    }

    /// <summary>Reads <c>["N","D"]</c> or <c>N,D</c>.</summary>
    internal static string[]? ParseColumns(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        text = text.Trim();
        if (text.StartsWith('['))
        {
            try
            {
                return JsonSerializer.Deserialize(text, CommandJson.Default.StringArray) ?? throw new CommandException("--x: the JSON list is empty.");
            }
            catch (JsonException)
            {
                throw new CommandException($"--x: '{text}' is not a JSON list of column names; write [\"N\",\"D\"] or N,D.");
            }
        }
        return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private const string DataKinds = "FitData, a DataFrame, a RunStore, a Dictionary<string, double[]>, a list of records, or a CSV file";
}
