using ScalingInteractive.Checkpoints;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>The pre-training run on A (stage 0 of <see cref="LoraExperimentSpec"/>): later stages read its checkpoint by its key.</summary>
public sealed record LoraPretrainRecord
{
    /// <summary>Record kind in the store ("pretrain").</summary>
    public string Kind { get; init; } = "pretrain";

    /// <summary>Run key in the store (<see cref="LoraExperimentSpec.PretrainKey"/>).</summary>
    public string Key { get; init; } = "";

    /// <summary>Name of corpus A.</summary>
    public string Corpus { get; init; } = "";

    /// <summary>Pre-training steps.</summary>
    public int Steps { get; init; }

    /// <summary>Peak learning rate of pre-training.</summary>
    public double LearningRate { get; init; }

    /// <summary>Mean training loss over the last steps (NaN for weights adopted from an earlier version's store).</summary>
    public double TrainLoss { get; init; }

    /// <summary>Validation loss on A of the pre-trained model (every target run's loss on A before fine-tuning).</summary>
    public double PretrainLoss { get; init; }

    /// <summary>Validation loss of the pre-trained model on each task, in order.</summary>
    public double[] TaskLosses { get; init; } = [];

    /// <summary>Training broke the divergence rule, or an evaluation loss was non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>File name of the checkpoint (in the store's checkpoint folder: <see cref="ExperimentContext.CheckpointPath"/>).</summary>
    public string Checkpoint { get; init; } = "";

    /// <summary>The weights were adopted from an earlier version's <c>STORE.pretrained.safetensors</c> rather than trained now.</summary>
    public bool Adopted { get; init; }

    /// <summary>Wall-clock seconds of the run.</summary>
    public double Seconds { get; init; }
}

/// <summary>One fine-tuning run on the target task.</summary>
public sealed record LoraRunRecord
{
    /// <summary>Run key in the store.</summary>
    public string Key { get; init; } = "";

    /// <summary>Method label, e.g. "full", "LoRA r=8", "rsLoRA r=8".</summary>
    public string Method { get; init; } = "";

    /// <summary>LoRA rank (0 for full fine-tuning).</summary>
    public int Rank { get; init; }

    /// <summary>Rank-stabilised scaling.</summary>
    public bool RsLora { get; init; }

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; }

    /// <summary>Trainable parameters.</summary>
    public long TrainableParameters { get; init; }

    /// <summary>Validation loss on the target B after fine-tuning.</summary>
    public double TargetLoss { get; init; }

    /// <summary>Validation loss on A of the pre-trained model.</summary>
    public double PretrainLossBefore { get; init; }

    /// <summary>Validation loss on A after fine-tuning (forgetting = after - before).</summary>
    public double PretrainLossAfter { get; init; }

    /// <summary>Training broke the package's <see cref="DivergenceRule"/>, or an evaluation loss was non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>Intruder analysis of the adapted matrices (pre-trained vs fine-tuned).</summary>
    public ModelSpectrum? Spectrum { get; init; }

    /// <summary>Intruder directions scaled by the mitigation.</summary>
    public int MitigatedDirections { get; init; }

    /// <summary>Target loss after scaling intruder directions by lambda.</summary>
    public double MitigatedTargetLoss { get; init; }

    /// <summary>Loss on A after the mitigation.</summary>
    public double MitigatedPretrainLoss { get; init; }

    /// <summary>Wall-clock seconds of the run.</summary>
    public double Seconds { get; init; }

    /// <summary>Forgetting: loss on A after minus before.</summary>
    public double Forgetting => PretrainLossAfter - PretrainLossBefore;
}

/// <summary>One method trained on the task sequence, with the loss on every task after each stage.</summary>
public sealed record LoraSequenceRecord
{
    /// <summary>Record kind in the store ("sequence").</summary>
    public string Kind { get; init; } = "sequence";

    /// <summary>Run key in the store.</summary>
    public string Key { get; init; } = "";

    /// <summary>Method label.</summary>
    public string Method { get; init; } = "";

    /// <summary>LoRA rank (0 = full).</summary>
    public int Rank { get; init; }

    /// <summary>Learning rate used (the one selected on the target task).</summary>
    public double LearningRate { get; init; }

    /// <summary>Task names: A (pre-training) then the sequence.</summary>
    public string[] Tasks { get; init; } = [];

    /// <summary>Losses[stage][task]: stage 0 = pre-trained model, stage i = after training on task i.</summary>
    public double[][] Losses { get; init; } = [];

    /// <summary>Intruder dimensions (vs the pre-trained weights, headline epsilon) after each stage.</summary>
    public int[] Intruders { get; init; } = [];

    /// <summary>A loss became non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>Per task, the loss on it at which its training stopped early (<see cref="LoraExperiment.SequenceToLosses"/>); null: every task ran all its steps.</summary>
    public double[]? Levels { get; init; }

    /// <summary>Steps taken on each task (empty in records written before this was kept).</summary>
    public int[] StepsPerTask { get; init; } = [];
}

/// <summary>A fine-tuned model measured the first time its target loss reached a level (<see cref="LoraExperiment.FineTuneToLosses"/>).</summary>
public sealed record LoraLossSnapshot
{
    /// <summary>The target loss asked for.</summary>
    public double Level { get; init; }

    /// <summary>Steps taken when the evaluated target loss first was at or below <see cref="Level"/>.</summary>
    public int Step { get; init; }

    /// <summary>Validation loss on the target B at that step (at most <see cref="Level"/>; the gap is the evaluation interval's overshoot).</summary>
    public double TargetLoss { get; init; }

    /// <summary>Validation loss on A of the pre-trained model.</summary>
    public double PretrainLossBefore { get; init; }

    /// <summary>Validation loss on A at that step.</summary>
    public double PretrainLossAfter { get; init; }

    /// <summary>Intruder analysis of the adapted matrices at that step (pre-trained vs the weights then; LoRA merged).</summary>
    public ModelSpectrum? Spectrum { get; init; }

    /// <summary>Forgetting: loss on A at that step minus before fine-tuning.</summary>
    public double Forgetting => PretrainLossAfter - PretrainLossBefore;
}

/// <summary>
/// One method fine-tuned on the target B with its target loss evaluated along the way and snapshots at given loss
/// levels (<see cref="LoraExperiment.FineTuneToLosses"/>): early stopping at a target loss, so that methods can be
/// compared at matched target loss.
/// </summary>
public sealed record LoraTrajectoryRecord
{
    /// <summary>Record kind in the store ("trajectory").</summary>
    public string Kind { get; init; } = "trajectory";

    /// <summary>Run key in the store.</summary>
    public string Key { get; init; } = "";

    /// <summary>Method label.</summary>
    public string Method { get; init; } = "";

    /// <summary>LoRA rank (0 = full fine-tuning).</summary>
    public int Rank { get; init; }

    /// <summary>Rank-stabilised scaling.</summary>
    public bool RsLora { get; init; }

    /// <summary>Peak learning rate (the schedule is the experiment's, over <see cref="LoraExperimentOptions.FineTuneSteps"/>).</summary>
    public double LearningRate { get; init; }

    /// <summary>The target-loss levels asked for.</summary>
    public double[] Levels { get; init; } = [];

    /// <summary>Steps between evaluations of the target loss (the last step is always evaluated).</summary>
    public int EvaluateEvery { get; init; }

    /// <summary>Steps at which the target loss was evaluated.</summary>
    public int[] Steps { get; init; } = [];

    /// <summary>Validation loss on B at each of <see cref="Steps"/>.</summary>
    public double[] TargetLosses { get; init; } = [];

    /// <summary>One snapshot per level reached, in the order reached; a level never reached has none.</summary>
    public LoraLossSnapshot[] Snapshots { get; init; } = [];

    /// <summary>Steps taken: training stops once every level is reached, else runs the whole schedule.</summary>
    public int StepsCompleted { get; init; }

    /// <summary>Training broke the divergence rule or a loss became non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>Wall-clock seconds of the run.</summary>
    public double Seconds { get; init; }

    /// <summary>The snapshot at a level (null when it was not reached).</summary>
    public LoraLossSnapshot? At(double level) => Snapshots.FirstOrDefault(x => x.Level == level);
}
