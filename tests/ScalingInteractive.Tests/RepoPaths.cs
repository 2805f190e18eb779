namespace ScalingInteractive.Tests;

/// <summary>Locations in the repository and the shared data folder, found from the test binaries.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Library => Path.Combine(Root, "src", "ScalingInteractive");
    public static string ExtensionDib => Path.Combine(Library, "extension.dib");
    public static string Notebooks => Path.Combine(Root, "notebooks");

    /// <summary>../shared/data beside the repository (tests read data from there, never from the repo).</summary>
    public static string SharedData => Path.GetFullPath(Path.Combine(Root, "..", "shared", "data"));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ScalingInteractive.sln"))) return dir.FullName;
        throw new InvalidOperationException("ScalingInteractive.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A fact that needs ../shared/data: skipped with a note where the folder is absent (the README names it).</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute()
    {
        if (!Directory.Exists(RepoPaths.SharedData)) Skip = $"needs the test data folder {RepoPaths.SharedData} (../shared/data beside the repository)";
    }
}

/// <summary>A skippable fact (it may call <c>Skip.If</c>) that also needs ../shared/data.</summary>
public sealed class SharedDataSkippableFactAttribute : SkippableFactAttribute
{
    public SharedDataSkippableFactAttribute()
    {
        if (!Directory.Exists(RepoPaths.SharedData)) Skip = $"needs the test data folder {RepoPaths.SharedData} (../shared/data beside the repository)";
    }
}

/// <summary>
/// What a test needs from the machine besides the build: reported as skipped with the reason where it is missing, except
/// in CI (CI=true), where .ci/run installs and starts it, so a missing one fails the test.
/// </summary>
public static class Needs
{
    /// <summary>Skips (or fails in CI) when <paramref name="missing"/> says why <paramref name="what"/> cannot be used.</summary>
    public static void Tool(string what, string? missing, string remedy)
    {
        if (missing is null) return;
        Assert.False(Environment.GetEnvironmentVariable("CI") == "true", $"{what} is required in CI (.ci/run provides it): {missing}");
        Skip.If(true, $"{what} is not available here ({missing}); {remedy}. In CI the test fails instead.");
    }
}

/// <summary>A theory that needs ../shared/data: skipped with a note where the folder is absent.</summary>
public sealed class SharedDataTheoryAttribute : TheoryAttribute
{
    public SharedDataTheoryAttribute()
    {
        if (!Directory.Exists(RepoPaths.SharedData)) Skip = $"needs the test data folder {RepoPaths.SharedData} (../shared/data beside the repository)";
    }
}
