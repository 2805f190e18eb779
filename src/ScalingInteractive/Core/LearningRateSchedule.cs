namespace ScalingInteractive.Core;

/// <summary>The two areas of a learning-rate schedule used by law 7 (Tissue et al. 2024), one value per step.</summary>
/// <param name="S1">Forward area: sum of the learning rates up to each step (warm-up steps counted at the peak rate).</param>
/// <param name="S2">Annealing area: sum of the momenta <c>m_i = lambda m_(i-1) + (eta_(i-1) - eta_i)</c> up to each step.</param>
public sealed record ScheduleAreas(double[] S1, double[] S2);

/// <summary>
/// A learning-rate schedule given step by step (step 1 first), with its warm-up length. Factories build the common
/// schedules; any array of rates works. <see cref="Areas"/> gives S1 and S2 for law 7.
/// </summary>
public sealed class LearningRateSchedule
{
    /// <summary>Creates a schedule from per-step rates (step 1 first) and the number of warm-up steps at the start.</summary>
    public LearningRateSchedule(string name, double[] rates, int warmupSteps = 0)
    {
        ArgumentNullException.ThrowIfNull(rates);
        if (rates.Length == 0) throw new ArgumentException("A learning-rate schedule needs at least one step.", nameof(rates));
        for (int i = 0; i < rates.Length; i++)
            if (!double.IsFinite(rates[i]) || rates[i] < 0)
                throw new ArgumentException($"Learning rate at step {i + 1} is {rates[i]}; rates must be finite and non-negative.", nameof(rates));
        if (warmupSteps < 0 || warmupSteps > rates.Length)
            throw new ArgumentException($"warmupSteps is {warmupSteps}; it must be between 0 and the number of steps ({rates.Length}).", nameof(warmupSteps));
        Name = name;
        Rates = rates;
        WarmupSteps = warmupSteps;
    }

    /// <summary>Schedule name, e.g. <c>cosine</c>.</summary>
    public string Name { get; }

    /// <summary>Learning rate of each step (step 1 first).</summary>
    public double[] Rates { get; }

    /// <summary>Warm-up steps at the start (counted at the peak rate by <see cref="Areas"/>).</summary>
    public int WarmupSteps { get; }

    /// <summary>Number of steps.</summary>
    public int Steps => Rates.Length;

    /// <summary>The largest rate.</summary>
    public double Peak => Rates.Max();

    /// <summary>A constant rate after a linear warm-up.</summary>
    public static LearningRateSchedule Constant(double peak, int steps, int warmupSteps = 0) =>
        Build("constant", peak, steps, warmupSteps, _ => peak);

    /// <summary>Cosine decay from the peak to <paramref name="minimum"/> after a linear warm-up.</summary>
    public static LearningRateSchedule Cosine(double peak, int steps, int warmupSteps = 0, double minimum = 0) =>
        Build("cosine", peak, steps, warmupSteps, progress => minimum + (peak - minimum) * 0.5 * (1 + Math.Cos(Math.PI * progress)));

    /// <summary>Linear decay from the peak to <paramref name="minimum"/> after a linear warm-up.</summary>
    public static LearningRateSchedule Linear(double peak, int steps, int warmupSteps = 0, double minimum = 0) =>
        Build("linear", peak, steps, warmupSteps, progress => peak + (minimum - peak) * progress);

    /// <summary>
    /// Warm-up-stable-decay: warm-up, constant at the peak, then a linear decay to <paramref name="minimum"/> over
    /// the last <paramref name="decayFraction"/> of the steps.
    /// </summary>
    public static LearningRateSchedule WarmupStableDecay(double peak, int steps, int warmupSteps = 0, double decayFraction = 0.1, double minimum = 0)
    {
        if (!(decayFraction > 0 && decayFraction <= 1)) throw new ArgumentException($"decayFraction is {decayFraction}; it must be in (0, 1].", nameof(decayFraction));
        int decaySteps = Math.Max(1, (int)Math.Round(steps * decayFraction));
        int decayStart = steps - decaySteps;
        var schedule = Build("wsd", peak, steps, warmupSteps, _ => peak);
        for (int i = Math.Max(decayStart, warmupSteps); i < steps; i++)
            schedule.Rates[i] = peak + (minimum - peak) * (i - decayStart + 1) / decaySteps;
        return schedule;
    }

    /// <summary>Step decay: the rate is multiplied by <paramref name="factor"/> at each milestone step (1-based).</summary>
    public static LearningRateSchedule StepDecay(double peak, int steps, IEnumerable<int> milestones, double factor = 0.1, int warmupSteps = 0)
    {
        var sorted = milestones.Order().ToArray();
        return Build("step", peak, steps, warmupSteps, progress => peak, (step, rate) => rate * Math.Pow(factor, sorted.Count(m => step >= m)));
    }

    private static LearningRateSchedule Build(string name, double peak, int steps, int warmupSteps, Func<double, double> afterWarmup,
        Func<int, double, double>? adjust = null)
    {
        if (!(peak > 0 && double.IsFinite(peak))) throw new ArgumentException($"peak learning rate is {peak}; it must be positive.", nameof(peak));
        if (steps < 1) throw new ArgumentException($"steps is {steps}; it must be at least 1.", nameof(steps));
        // warmupSteps == steps is a run that is all warm-up (a short run of a grid whose warm-up is clamped to its length).
        if (warmupSteps < 0 || warmupSteps > steps) throw new ArgumentException($"warmupSteps is {warmupSteps}; it must be in [0, steps].", nameof(warmupSteps));
        var rates = new double[steps];
        int decaySteps = steps - warmupSteps;
        for (int i = 0; i < steps; i++)
        {
            int step = i + 1;
            double rate = step <= warmupSteps ? peak * step / warmupSteps : afterWarmup(decaySteps <= 1 ? 0 : (double)(step - warmupSteps - 1) / (decaySteps - 1));
            rates[i] = adjust is null ? rate : adjust(step, rate);
        }
        return new LearningRateSchedule(name, rates, warmupSteps);
    }

    /// <summary>
    /// S1 and S2 of law 7 at every step (Tissue et al. 2024): <c>S1(s) = sum_(i&lt;=s) eta_i</c> and
    /// <c>S2(s) = sum_(i&lt;=s) m_i</c>, <c>m_i = lambda m_(i-1) + (eta_(i-1) - eta_i)</c>, <c>m_1 = 0</c>, with every
    /// warm-up step counted at the peak rate (so warm-up adds to S1 and nothing to S2).
    /// </summary>
    /// <param name="lambda">Decay of the annealing momentum, 0.999 in the paper.</param>
    public ScheduleAreas Areas(double lambda = 0.999)
    {
        if (!(lambda >= 0 && lambda < 1)) throw new ArgumentException($"lambda is {lambda}; it must be in [0, 1).", nameof(lambda));
        double peak = Peak;
        var s1 = new double[Steps];
        var s2 = new double[Steps];
        double sum1 = 0, sum2 = 0, momentum = 0, previous = 0;
        for (int i = 0; i < Steps; i++)
        {
            double rate = i < WarmupSteps ? peak : Rates[i];
            if (i > 0) momentum = lambda * momentum + (previous - rate);
            sum1 += rate;
            sum2 += momentum;
            s1[i] = sum1;
            s2[i] = sum2;
            previous = rate;
        }
        return new ScheduleAreas(s1, s2);
    }
}
