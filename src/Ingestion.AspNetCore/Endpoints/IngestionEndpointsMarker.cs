namespace Ingestion.AspNetCore.Endpoints;

/// <summary>Registered by <c>AddIngestionEndpoints</c>, so <c>MapIngestion</c> can tell it was called.</summary>
internal sealed class IngestionEndpointsMarker;
