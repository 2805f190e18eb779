using System.Diagnostics;
using static TorchSharp.torch;

namespace ScalingInteractive.Training;

/// <summary>One run's settings: its learning rate at every step (law 7's schedule type) and its optimiser.</summary>
/// <param name="Schedule">The learning rate of every step; its length is the number of steps.</param>
public sealed record TrainingRun(LearningRateSchedule Schedule)
{
    /// <summary>AdamW settings (clipping and weight decay included).</summary>
    public AdamWOptions Optimizer { get; init; } = new();

    /// <summary>Peak rate eta for independent weight decay's schedule factor lr_t/eta; null: the schedule's peak.</summary>
    public double? PeakLearningRate { get; init; }

    /// <summary>L0 of the divergence rule; null: the training loss of the first step (measured at the initial weights).</summary>
    public double? InitialLoss { get; init; }
}

/// <summary>Settings of one <see cref="Trainer.Train"/> call: the runs trained at once (one for a single run).</summary>
public sealed record TrainerOptions
{
    /// <summary>One entry per run, in the parametrisation's member order; every schedule has the same number of steps.</summary>
    public required IReadOnlyList<TrainingRun> Runs { get; init; }

    /// <summary>The divergence rule, checked per run at logged steps.</summary>
    public DivergenceRule Divergence { get; init; } = DivergenceRule.Default;

    /// <summary>Log (synchronise with the host) at the first step, every this many steps and at the last step.</summary>
    public int LogEvery { get; init; } = 10;

    /// <summary>Fraction of the last steps whose mean training loss is <see cref="TrainingOutcome.TailLoss"/> (default 0.1).</summary>
    public double TailFraction { get; init; } = 0.1;

    /// <summary>Options for one run with <paramref name="schedule"/> and <paramref name="optimizer"/> (default AdamW).</summary>
    public static TrainerOptions Single(LearningRateSchedule schedule, AdamWOptions? optimizer = null, int logEvery = 10) =>
        new() { Runs = [new TrainingRun(schedule) { Optimizer = optimizer ?? new AdamWOptions() }], LogEvery = logEvery };
}

/// <summary>The step being taken.</summary>
/// <param name="Index">0-based step index.</param>
/// <param name="LearningRates">The scheduled rate of each run still training, in <paramref name="Active"/>'s order.</param>
/// <param name="Log">True on a logged step (the loss hook may capture extra statistics).</param>
/// <param name="Active">The runs still training (indices into <see cref="TrainerOptions.Runs"/>), in member order.</param>
public readonly record struct TrainingStep(int Index, IReadOnlyList<double> LearningRates, bool Log, IReadOnlyList<int> Active)
{
    /// <summary>The rate of the first run still training (a single run's rate).</summary>
    public double LearningRate => LearningRates[0];
}

/// <summary>What a logged step hands to <see cref="TrainerHooks.OnLog"/> (tensors of the step, on the device, one value per run still training).</summary>
/// <param name="Step">1-based steps done.</param>
/// <param name="LearningRates">Rate of the step per run.</param>
/// <param name="Loss">The loss each run minimised [K].</param>
/// <param name="GradNorm">Gradient norm before clipping per run [K].</param>
/// <param name="UpdateRms">RMS of the parameter change per run [K] (with <see cref="TrainerHooks.MeasureUpdate"/>).</param>
/// <param name="Active">The runs still training, in member order.</param>
public readonly record struct LoggedStep(int Step, IReadOnlyList<double> LearningRates, Tensor Loss, Tensor GradNorm, Tensor? UpdateRms, IReadOnlyList<int> Active);

/// <summary>A logged training loss.</summary>
/// <param name="Step">1-based steps done.</param>
/// <param name="LearningRate">Rate of the step.</param>
/// <param name="Loss">Training loss of the step (before its update).</param>
public sealed record TrainingLogPoint(int Step, double LearningRate, double Loss);

/// <summary>How one run of <see cref="Trainer.Train"/> ended.</summary>
public sealed record TrainingOutcome
{
    /// <summary>Steps taken (fewer than planned when the run diverged or was stopped early).</summary>
    public int StepsCompleted { get; init; }

    /// <summary>L0 of the divergence rule.</summary>
    public double InitialLoss { get; init; }

    /// <summary>True when the run diverged (<see cref="DivergenceRule"/>).</summary>
    public bool Diverged { get; init; }

    /// <summary>Why, or null.</summary>
    public string? DivergenceReason { get; init; }

    /// <summary>Mean training loss over the last <see cref="TrainerOptions.TailFraction"/> of the steps (NaN when it ended before them).</summary>
    public double TailLoss { get; init; }

    /// <summary>Logged training losses.</summary>
    public IReadOnlyList<TrainingLogPoint> Log { get; init; } = [];

    /// <summary>Wall time of the loop (runs trained at once: this run's share).</summary>
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
    /// <summary>
    /// Draws the step's batch(es), runs the model's forward and returns the loss of each run still training ([K], or a
    /// scalar for one run). Their sum is differentiated: runs share no weights, so each gets its own loss's gradient.
    /// </summary>
    public required Func<TrainingStep, Tensor> Loss { get; init; }

    /// <summary>On logged steps: measure what the caller records and return the loss the divergence rule judges per run (default: the loss).</summary>
    public Func<LoggedStep, IReadOnlyList<double>>? OnLog { get; init; }

    /// <summary>
    /// After every step (and after dropping diverged runs), with the steps done and the runs still training (in member
    /// order), e.g. validation at chosen steps.
    /// </summary>
    public Action<int, IReadOnlyList<int>>? AfterStep { get; init; }

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
/// The package's one training loop, nanoGPT-style and top to bottom: for each step, write the parametrisation into the
/// model, sample a batch and take the loss (the caller's hook), backward, pull gradients into the trained tensors, clip,
/// AdamW step with the scheduled rates, zero the gradients; on logged steps synchronise once with the host, report
/// progress and apply the <see cref="DivergenceRule"/> to each run. It trains K runs at once when the parametrisation
/// has K members (an ensemble of proxy transformers: one batched model, per-run rates, weight decay, clipping and
/// divergence, a diverged run dropped while the others go on), and one run as an ensemble of one. Proxies, MNIST and LM
/// subspace probes, pre-training and LoRA fine-tuning all run through it; what differs is the parametrisation and the
/// hooks.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// Trains; returns one outcome per run, in order. <paramref name="progress"/> gets (steps done, status) at logged
    /// steps; <paramref name="cancellationToken"/> is checked every step (an <see cref="OperationCanceledException"/>
    /// leaves the caller nothing half-written).
    /// </summary>
    public static IReadOnlyList<TrainingOutcome> Train(IParametrisation parametrisation, TrainerHooks hooks, TrainerOptions options,
        IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parametrisation);
        ArgumentNullException.ThrowIfNull(hooks);
        ArgumentNullException.ThrowIfNull(options);
        if (options.LogEvery < 1) throw new ArgumentException($"LogEvery must be at least 1; got {options.LogEvery}.", nameof(options));
        options.Divergence.Validate();
        var runs = options.Runs;
        int count = runs.Count;
        if (count == 0 || count != parametrisation.Members)
            throw new ArgumentException($"{count} runs for a parametrisation of {parametrisation.Members} members; give one run per member.", nameof(options));
        int total = runs[0].Schedule.Steps;
        if (runs.Any(r => r.Schedule.Steps != total)) throw new ArgumentException("Runs trained at once must have the same number of steps.", nameof(options));
        var rates = runs.Select(r => r.Schedule.Rates).ToArray();
        var peaks = runs.Select(r => r.PeakLearningRate ?? r.Schedule.Peak).ToArray();
        using var optimizer = new AdamW(parametrisation, runs.Select(r => r.Optimizer).ToList());
        int tailStart = total - Math.Max(1, (int)(total * options.TailFraction));
        Tensor? tailSum = null; // [K] on the loss's device (float32: float64 is not on every backend): no host synchronisation
        var tail = new double[count];
        Array.Fill(tail, double.NaN);
        var logs = Enumerable.Range(0, count).Select(_ => new List<TrainingLogPoint>()).ToArray();
        var initial = runs.Select(r => r.InitialLoss).ToArray();
        var divergence = new string?[count];
        var steps = new int[count];
        var active = Enumerable.Range(0, count).ToList();
        bool stopped = false;
        var clock = Stopwatch.StartNew();
        for (int step = 0; step < total && active.Count > 0; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope(); // every tensor of the step is freed here: memory stays flat
            bool logged = step == 0 || (step + 1) % options.LogEvery == 0 || step == total - 1;
            var learningRates = active.Select(i => rates[i][step]).ToArray();

            parametrisation.BeforeForward();
            var loss = hooks.Loss(new TrainingStep(step, learningRates, logged, active));
            loss.sum().backward();
            parametrisation.AfterBackward();
            var gradNorm = optimizer.ClipGradients();
            var updateRms = optimizer.Step(learningRates, active.Select(i => peaks[i]).ToArray(), measureUpdate: logged && hooks.MeasureUpdate);
            optimizer.ZeroGrad();
            int done = step + 1;
            foreach (int i in active) steps[i] = done;
            if (step >= tailStart)
                using (no_grad())
                {
                    tailSum ??= zeros(active.Count, dtype: ScalarType.Float32, device: loss.device).DetachFromDisposeScope();
                    tailSum.PlusInPlace(loss.detach().reshape(-1).to_type(ScalarType.Float32));
                }

            if (logged)
            {
                var judged = hooks.OnLog?.Invoke(new LoggedStep(done, learningRates, loss, gradNorm, updateRms, active))
                    ?? loss.detach().reshape(-1).to_type(ScalarType.Float32).cpu().data<float>().Select(x => (double)x).ToArray();
                var keep = new List<long>();
                for (int j = 0; j < active.Count; j++)
                {
                    int i = active[j];
                    logs[i].Add(new TrainingLogPoint(done, learningRates[j], judged[j]));
                    initial[i] ??= judged[j]; // the first step's loss is measured at the initial weights
                    divergence[i] = options.Divergence.Check(judged[j], initial[i]!.Value, done);
                    if (divergence[i] is null) keep.Add(j);
                }
                progress?.Report(done, $"step {done}/{total}, loss {judged[0]:F4}" + (count > 1 ? $" (run {active[0]} of {count}; {keep.Count} training)" : ""));
                if (keep.Count < active.Count)
                {
                    // Freeze the diverged runs: drop their rows (weights, moments) while the others go on unchanged.
                    if (tailSum is not null) RecordTail(tailSum, active, keep, tail, steps, tailStart);
                    var kept = keep.Select(j => active[(int)j]).ToList();
                    if (kept.Count > 0)
                    {
                        parametrisation.KeepMembers(keep.ToArray());
                        optimizer.KeepMembers(keep.ToArray());
                        if (tailSum is not null) tailSum = Select(tailSum, keep);
                    }
                    active = kept;
                    if (active.Count == 0) break;
                }
            }
            hooks.AfterStep?.Invoke(done, active);
            if (done < total && hooks.StopAfter?.Invoke(done) == true) { stopped = true; break; }
        }
        parametrisation.Finish();
        clock.Stop();
        if (tailSum is not null)
        {
            RecordTail(tailSum, active, Enumerable.Range(0, active.Count).Select(j => (long)j).ToList(), tail, steps, tailStart, finished: true);
            tailSum.Dispose();
        }
        double seconds = clock.Elapsed.TotalSeconds / count; // each run's share of the time
        return Enumerable.Range(0, count).Select(i =>
        {
            bool stoppedEarly = stopped && active.Contains(i);
            string? reason = divergence[i];
            if (reason is null && !(stoppedEarly && steps[i] <= tailStart) && !double.IsFinite(tail[i]))
                reason = $"training loss is {tail[i]} over the last {total - tailStart} steps";
            return new TrainingOutcome
            {
                StepsCompleted = steps[i],
                InitialLoss = initial[i] ?? double.NaN,
                Diverged = reason is not null,
                DivergenceReason = reason,
                TailLoss = tail[i],
                Log = logs[i],
                Seconds = seconds,
                StoppedEarly = stoppedEarly,
            };
        }).ToList();
    }

    // Mean tail loss of the runs leaving (the dropped ones, or at the end every one still training).
    private static void RecordTail(Tensor tailSum, List<int> active, List<long> keep, double[] tail, int[] steps, int tailStart, bool finished = false)
    {
        var sums = tailSum.cpu().data<float>().ToArray();
        for (int j = 0; j < active.Count; j++)
        {
            if (!finished && keep.Contains(j)) continue;
            int i = active[j];
            if (steps[i] > tailStart) tail[i] = sums[j] / (steps[i] - tailStart);
        }
    }

    private static Tensor Select(Tensor values, List<long> keep)
    {
        using var index = tensor(keep.ToArray(), device: values.device);
        var kept = values.index_select(0, index).DetachFromDisposeScope();
        values.Dispose();
        return kept;
    }
}
