using System.Diagnostics;
using ScalingInteractive.Commands;
using ScalingInteractive.Core;
using static TorchSharp.torch;
using FitSchedule = ScalingInteractive.Fitting.LearningRateSchedule;

namespace ScalingInteractive.Training;

/// <summary>Settings of one <see cref="Trainer.Train"/> call.</summary>
public sealed record TrainerOptions
{
    /// <summary>The learning rate of every step (law 7's schedule type); its length is the number of steps.</summary>
    public required FitSchedule Schedule { get; init; }

    /// <summary>AdamW settings (clipping included).</summary>
    public AdamWOptions Optimizer { get; init; } = new();

    /// <summary>The divergence rule, checked at logged steps.</summary>
    public DivergenceRule Divergence { get; init; } = DivergenceRule.Default;

    /// <summary>Log (synchronise with the host) at the first step, every this many steps and at the last step.</summary>
    public int LogEvery { get; init; } = 10;

    /// <summary>L0 of the divergence rule; null: the training loss of the first step (measured at the initial weights).</summary>
    public double? InitialLoss { get; init; }

    /// <summary>Fraction of the last steps whose mean training loss is <see cref="TrainingOutcome.TailLoss"/> (default 0.1).</summary>
    public double TailFraction { get; init; } = 0.1;

    /// <summary>Peak rate eta for independent weight decay's schedule factor lr_t/eta; null: the schedule's peak.</summary>
    public double? PeakLearningRate { get; init; }
}

/// <summary>The step being taken.</summary>
/// <param name="Index">0-based step index.</param>
/// <param name="LearningRate">The scheduled rate of this step.</param>
/// <param name="Log">True on a logged step (the loss hook may capture extra statistics).</param>
public readonly record struct TrainingStep(int Index, double LearningRate, bool Log);

/// <summary>What a logged step hands to <see cref="TrainerHooks.OnLog"/> (tensors of the step, on the device).</summary>
/// <param name="Step">1-based steps done.</param>
/// <param name="LearningRate">Rate of the step.</param>
/// <param name="Loss">The loss the step minimised (scalar).</param>
/// <param name="GradNorm">Gradient norm before clipping (scalar).</param>
/// <param name="UpdateRms">RMS of the parameter change (scalar).</param>
public readonly record struct LoggedStep(int Step, double LearningRate, Tensor Loss, Tensor GradNorm, Tensor? UpdateRms);

/// <summary>A logged training loss.</summary>
/// <param name="Step">1-based steps done.</param>
/// <param name="LearningRate">Rate of the step.</param>
/// <param name="Loss">Training loss of the step (before its update).</param>
public sealed record TrainingLogPoint(int Step, double LearningRate, double Loss);

/// <summary>The outcome of <see cref="Trainer.Train"/>.</summary>
public sealed record TrainingOutcome
{
    /// <summary>Steps taken (fewer than planned when the run diverged).</summary>
    public int StepsCompleted { get; init; }

    /// <summary>L0 of the divergence rule.</summary>
    public double InitialLoss { get; init; }

    /// <summary>True when the run diverged (<see cref="DivergenceRule"/>).</summary>
    public bool Diverged { get; init; }

    /// <summary>Why, or null.</summary>
    public string? DivergenceReason { get; init; }

    /// <summary>Mean training loss over the last <see cref="TrainerOptions.TailFraction"/> of the steps (NaN when diverged before them).</summary>
    public double TailLoss { get; init; }

    /// <summary>Logged training losses.</summary>
    public IReadOnlyList<TrainingLogPoint> Log { get; init; } = [];

    /// <summary>Wall time of the loop.</summary>
    public double Seconds { get; init; }

    /// <summary>
    /// True when <see cref="TrainerHooks.StopAfter"/> ended the run before the schedule's last step (early stopping, not
    /// divergence); <see cref="StepsCompleted"/> is then the step it stopped after.
    /// </summary>
    public bool StoppedEarly { get; init; }
}

/// <summary>The caller's part of the loop.</summary>
public sealed class TrainerHooks
{
    /// <summary>Draws the step's batch, runs the module's forward and returns the scalar loss to minimise (required).</summary>
    public required Func<TrainingStep, Tensor> Loss { get; init; }

    /// <summary>On logged steps: measure what the caller records and return the loss the divergence rule judges (default: the loss).</summary>
    public Func<LoggedStep, double>? OnLog { get; init; }

    /// <summary>After every step, with the steps done (e.g. validation at chosen steps).</summary>
    public Action<int>? AfterStep { get; init; }

    /// <summary>
    /// After every step (after <see cref="AfterStep"/>), with the steps done: true stops training there, e.g. at a target
    /// validation loss. The weights are those after that step, exactly as if the schedule had ended there with the same
    /// rates; the rest of the schedule is not run. A run stopped before its tail has a NaN
    /// <see cref="TrainingOutcome.TailLoss"/> and is not counted as diverged.
    /// </summary>
    public Func<int, bool>? StopAfter { get; init; }

    /// <summary>True when the logged steps need the update RMS (one parameter copy per logged step).</summary>
    public bool MeasureUpdate { get; init; }
}

/// <summary>
/// The package's one training loop, nanoGPT-style and top to bottom: for each step, write the parametrisation into
/// the module, sample a batch and take the loss (the caller's hook), backward, pull gradients into the trained
/// tensors, clip, AdamW step with the scheduled rate, zero the gradients; on logged steps synchronise once with the
/// host, report progress and apply the <see cref="DivergenceRule"/>. Proxies, MNIST and LM subspace probes, and LoRA
/// fine-tuning all run through it; what differs between them is the parametrisation and the hooks.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// Trains. <paramref name="progress"/> gets (steps done, status) at logged steps; <paramref name="cancellationToken"/>
    /// is checked every step (an <see cref="OperationCanceledException"/> leaves the caller nothing half-written).
    /// </summary>
    public static TrainingOutcome Train(IParametrisation parametrisation, TrainerHooks hooks, TrainerOptions options,
        IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parametrisation);
        ArgumentNullException.ThrowIfNull(hooks);
        ArgumentNullException.ThrowIfNull(options);
        if (options.LogEvery < 1) throw new ArgumentException($"LogEvery must be at least 1; got {options.LogEvery}.", nameof(options));
        options.Divergence.Validate();
        var rates = options.Schedule.Rates;
        int total = rates.Length;
        double peak = options.PeakLearningRate ?? options.Schedule.Peak;
        using var optimizer = new AdamW(parametrisation.Trainable, parametrisation.LearningRateScales, options.Optimizer);
        int tailStart = total - Math.Max(1, (int)(total * options.TailFraction));
        Tensor? tailSum = null; // on the loss's device (float32: float64 is not on every backend): no host synchronisation
        var log = new List<TrainingLogPoint>();
        double? initial = options.InitialLoss;
        string? divergence = null;
        int steps = 0;
        bool stopped = false;
        var clock = Stopwatch.StartNew();
        for (int step = 0; step < total; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope(); // every tensor of the step is freed here: memory stays flat
            bool logged = step == 0 || (step + 1) % options.LogEvery == 0 || step == total - 1;
            double lr = rates[step];

            parametrisation.BeforeForward();
            var loss = hooks.Loss(new TrainingStep(step, lr, logged));
            loss.backward();
            parametrisation.AfterBackward();
            var gradNorm = optimizer.ClipGradients(options.Optimizer.GradClip);
            var updateRms = optimizer.Step(lr, peak, measureUpdate: logged && hooks.MeasureUpdate);
            optimizer.ZeroGrad();
            steps = step + 1;
            if (step >= tailStart)
                using (no_grad())
                {
                    tailSum ??= zeros(1, dtype: ScalarType.Float32, device: loss.device).DetachFromDisposeScope();
                    tailSum.PlusInPlace(loss.detach().to_type(ScalarType.Float32));
                }

            if (logged)
            {
                double value = hooks.OnLog?.Invoke(new LoggedStep(steps, lr, loss, gradNorm, updateRms)) ?? loss.item<float>();
                log.Add(new TrainingLogPoint(steps, lr, value));
                initial ??= value; // the first step's loss is measured at the initial weights
                progress?.Report(steps, $"step {steps}/{total}, loss {value:F4}");
                divergence = options.Divergence.Check(value, initial.Value, steps);
                if (divergence is not null) break;
            }
            hooks.AfterStep?.Invoke(steps);
            if (steps < total && hooks.StopAfter?.Invoke(steps) == true) { stopped = true; break; }
        }
        parametrisation.Finish();
        clock.Stop();
        double tail = tailSum is not null && steps > tailStart ? tailSum.item<float>() / (steps - tailStart) : double.NaN;
        tailSum?.Dispose();
        if (divergence is null && !(stopped && steps <= tailStart) && !double.IsFinite(tail)) divergence = $"training loss is {tail} over the last {total - tailStart} steps";
        return new TrainingOutcome
        {
            StepsCompleted = steps,
            InitialLoss = initial ?? double.NaN,
            Diverged = divergence is not null,
            DivergenceReason = divergence,
            TailLoss = tail,
            Log = log,
            Seconds = clock.Elapsed.TotalSeconds,
            StoppedEarly = stopped,
        };
    }
}
