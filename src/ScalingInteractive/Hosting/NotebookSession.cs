namespace ScalingInteractive.Hosting;

/// <summary>
/// Settings a notebook reads to adapt to where it runs: quick mode (small experiments for CI) and the data folder.
/// The headless runner sets them from <c>--quick</c> and <c>--data</c>; in a notebook front end they come from the
/// environment variables <c>SCALING_INTERACTIVE_QUICK</c> (1/true) and <c>SCALING_INTERACTIVE_DATA</c>.
/// </summary>
public static class NotebookSession
{
    /// <summary>Environment variable that turns quick mode on.</summary>
    public const string QuickVariable = "SCALING_INTERACTIVE_QUICK";

    /// <summary>Environment variable naming the data folder.</summary>
    public const string DataVariable = "SCALING_INTERACTIVE_DATA";

    /// <summary>True when notebooks should shrink their experiments (CI).</summary>
    public static bool Quick { get; set; } =
        Environment.GetEnvironmentVariable(QuickVariable) is "1" or "true" or "True" or "TRUE";

    /// <summary>The notebooks' data root (default: the user's cache folder, <c>~/.cache/scaling-interactive/data</c>).</summary>
    public static string DataDirectory { get; set; } =
        Environment.GetEnvironmentVariable(DataVariable) is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "scaling-interactive", "data");

    /// <summary>Returns <paramref name="full"/> normally and <paramref name="quick"/> in quick mode.</summary>
    public static T Pick<T>(T full, T quick) => Quick ? quick : full;

    /// <summary>The path of a file in the data folder; throws a clear message when it is missing.</summary>
    public static string DataFile(string fileName)
    {
        string path = Path.GetFullPath(Path.Combine(DataDirectory, fileName));
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"Data file '{fileName}' was not found in the data folder '{DataDirectory}'. Set {DataVariable} (or the runner's --data option) to the folder that holds it.", path);
        return path;
    }
}
