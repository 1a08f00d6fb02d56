using Microsoft.AspNetCore.Routing;

namespace Ingestion.AspNetCore.Endpoints;

/// <summary>The GET routes.</summary>
internal static class ReadEndpoints
{
    public static void Map(RouteGroupBuilder group)
    {
        ArgumentNullException.ThrowIfNull(group);
    }
}
