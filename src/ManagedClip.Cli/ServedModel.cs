using ManagedClip.Retrieval;

namespace ManagedClip.Cli;

/// <summary>
/// The model a server answers with, which may still be loading: the server listens (and <c>/healthz</c> answers) at
/// once, <c>/readyz</c> turns 200 when the load is done, and a model request that arrives earlier waits for it in
/// the work queue. Optionally an image index for <c>/search</c>, opened and checked against the model up front.
/// </summary>
internal sealed class ServedModel
{
    private readonly Task<ClipModel> loading;

    private ServedModel(Task<ClipModel> loading, ImageIndexReader? index)
    {
        this.loading = loading;
        Index = index;
    }

    /// <summary>A model that is already loaded.</summary>
    public static ServedModel Ready(ClipModel model, ImageIndexReader? index = null) => new(Task.FromResult(model), index);

    /// <summary>Loads the model on a thread of its own, so the caller can start listening meanwhile.</summary>
    public static ServedModel LoadInBackground(Func<ClipModel> load, ImageIndexReader? index = null)
    {
        double? seconds = null;
        var loading = Task.Factory.StartNew(() =>
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            var model = load();
            seconds = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
            return model;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        return new ServedModel(loading, index) { loadSeconds = () => seconds };
    }

    private Func<double?> loadSeconds = () => null;

    /// <summary>How long the load took (null while it runs, after a failed load, or for a model loaded elsewhere).</summary>
    public double? LoadSeconds => loadSeconds();

    /// <summary>The index <c>/search</c> ranks, or null when the server was started without <c>--index</c>.</summary>
    public ImageIndexReader? Index { get; }

    /// <summary>The model once loaded; null while loading or after a failed load.</summary>
    public ClipModel? Current => loading.IsCompletedSuccessfully ? loading.Result : null;

    /// <summary>Why the load failed (one line), or null.</summary>
    public string? Failure => loading.IsFaulted ? CliErrors.Describe(loading.Exception!.InnerException ?? loading.Exception) : null;

    /// <summary>Completes when the load ends, successfully or not (the caller reads <see cref="Current"/>).</summary>
    public Task Loaded => loading;

    /// <summary>The model, waiting for the load if it is still running; a failed load is a <see cref="ModelUnavailableException"/>.</summary>
    public async Task<ClipModel> WaitAsync(CancellationToken cancel)
    {
        try
        {
            return await loading.WaitAsync(cancel);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new ModelUnavailableException($"the model failed to load: {CliErrors.Describe(e)}");
        }
    }
}

/// <summary>The model could not be loaded, so no model request can be served (HTTP 503).</summary>
internal sealed class ModelUnavailableException(string message) : Exception(message);
