using Microsoft.AspNetCore.Routing;

namespace Ingestion.AspNetCore.Endpoints;

/// <summary>The POST routes.</summary>
internal static class WriteEndpoints
{
    public static void Map(RouteGroupBuilder group)
    {
        ArgumentNullException.ThrowIfNull(group);
    }
}
