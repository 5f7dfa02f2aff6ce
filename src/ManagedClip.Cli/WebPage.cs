namespace ManagedClip.Cli;

/// <summary>
/// The web page at <c>/</c>: four files embedded in the assembly (Web/index.html, app.css, app.js, favicon.svg), served from
/// memory with a content security policy that allows nothing but this server (no CDN, no inline script), so the page
/// works offline and behind any proxy.
/// </summary>
internal static class WebPage
{
    // 'self' only; blob: for the preprocessed image the page shows from a fetched PNG.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    private static readonly (string Path, string Resource, string ContentType)[] Files =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/app.css", "app.css", "text/css; charset=utf-8"),
        ("/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/favicon.svg", "favicon.svg", "image/svg+xml"),
    ];

    public static void Map(WebApplication app)
    {
        foreach (var (path, resource, contentType) in Files)
        {
            byte[] bytes = Read(resource);
            app.MapGet(path, (HttpContext context) =>
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers.CacheControl = "no-cache";
                return Results.Bytes(bytes, contentType);
            }).ExcludeFromDescription();
        }
    }

    private static byte[] Read(string name)
    {
        using var stream = typeof(WebPage).Assembly.GetManifestResourceStream("ManagedClip.Cli.Web." + name)
                           ?? throw new InvalidOperationException($"the web page's {name} is not embedded in the assembly");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
