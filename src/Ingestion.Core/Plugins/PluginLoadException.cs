namespace Ingestion.Plugins;

/// <summary>A plug-in folder could not be loaded; the message names the file and says why.</summary>
internal sealed class PluginLoadException(string message, Exception? innerException = null) : Exception(message, innerException);
