namespace ScalingInteractive.Core;

/// <summary>
/// An error in what the user asked for or in their environment (a value out of range, no GPU, no LibTorch), shown as its
/// message, never as a stack trace. Commands, the worker and the kernel extension report it as such.
/// </summary>
public class UserErrorException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Which exceptions are the user's to fix, and their message.</summary>
public static class UserErrors
{
    /// <summary>
    /// The message to show for a user error (a <see cref="UserErrorException"/>, a bad argument, a missing or unreadable
    /// file, something unsupported here, a cancellation), or null for a bug, whose stack trace should be kept.
    /// </summary>
    public static string? MessageOf(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (error is AggregateException { InnerExceptions.Count: 1 } aggregate) error = aggregate.InnerException!;
        return error switch
        {
            UserErrorException or ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                or NotSupportedException or UnauthorizedAccessException => error.Message,
            OperationCanceledException => "Cancelled.",
            _ => null,
        };
    }
}
