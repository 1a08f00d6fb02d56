using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Ingestion.AspNetCore.Endpoints;

/// <summary>The problem answers of the routes (RFC 9457 problem details with a title and a detail naming what is wrong).</summary>
internal static class Problems
{
    public static NotFound<ProblemDetails> NotFound(string title, string detail) =>
        TypedResults.NotFound(new ProblemDetails { Status = StatusCodes.Status404NotFound, Title = title, Detail = detail });

    public static ProblemHttpResult BadQuery(string field, string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: $"Invalid query parameter '{field}'", detail: detail);
}
