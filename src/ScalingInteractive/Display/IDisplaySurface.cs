namespace ScalingInteractive.Display;

/// <summary>Somewhere values are shown: a notebook cell (through the kernel), the headless runner, a test.</summary>
public interface IDisplaySurface
{
    /// <summary>Shows a value (formatted by the display layer) and returns a handle to replace it in place.</summary>
    IDisplayHandle Display(object value);
}

/// <summary>A displayed value that can be replaced in place.</summary>
public interface IDisplayHandle
{
    /// <summary>Replaces the displayed value.</summary>
    void Update(object value);
}
