using System.Text.RegularExpressions;

namespace Ingestion.Sources.Ics;

/// <summary>
/// Windows time-zone display names, as Outlook, Exchange and Zimbra write them in TZID without a VTIMEZONE
/// (<c>(UTC-05:00) Eastern Time (US &amp; Canada)</c>, <c>(GMT+01.00) Amsterdam / Berlin / Bern / Rome / Stockholm /
/// Vienna</c>), mapped to their Windows zone IDs (which .NET maps to IANA). The offset prefix is ignored; the names are
/// those of Windows' own zone list (no .NET API gives them on Linux).
/// </summary>
internal static partial class IcsWindowsZones
{
    private static readonly Dictionary<string, string> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["International Date Line West"] = "Dateline Standard Time",
        ["Coordinated Universal Time-11"] = "UTC-11",
        ["Hawaii"] = "Hawaiian Standard Time",
        ["Alaska"] = "Alaskan Standard Time",
        ["Pacific Time (US & Canada)"] = "Pacific Standard Time",
        ["Pacific Time (US & Canada); Tijuana"] = "Pacific Standard Time",
        ["Baja California"] = "Pacific Standard Time (Mexico)",
        ["Arizona"] = "US Mountain Standard Time",
        ["Mountain Time (US & Canada)"] = "Mountain Standard Time",
        ["Chihuahua, La Paz, Mazatlan"] = "Mountain Standard Time (Mexico)",
        ["Central America"] = "Central America Standard Time",
        ["Central Time (US & Canada)"] = "Central Standard Time",
        ["Guadalajara, Mexico City, Monterrey"] = "Central Standard Time (Mexico)",
        ["Saskatchewan"] = "Canada Central Standard Time",
        ["Bogota, Lima, Quito, Rio Branco"] = "SA Pacific Standard Time",
        ["Bogota, Lima, Quito"] = "SA Pacific Standard Time",
        ["Eastern Time (US & Canada)"] = "Eastern Standard Time",
        ["Indiana (East)"] = "US Eastern Standard Time",
        ["Atlantic Time (Canada)"] = "Atlantic Standard Time",
        ["Caracas"] = "Venezuela Standard Time",
        ["Georgetown, La Paz, Manaus, San Juan"] = "SA Western Standard Time",
        ["Santiago"] = "Pacific SA Standard Time",
        ["Newfoundland"] = "Newfoundland Standard Time",
        ["Brasilia"] = "E. South America Standard Time",
        ["City of Buenos Aires"] = "Argentina Standard Time",
        ["Buenos Aires"] = "Argentina Standard Time",
        ["Greenland"] = "Greenland Standard Time",
        ["Montevideo"] = "Montevideo Standard Time",
        ["Azores"] = "Azores Standard Time",
        ["Cabo Verde Is."] = "Cape Verde Standard Time",
        ["Coordinated Universal Time"] = "UTC",
        ["Dublin, Edinburgh, Lisbon, London"] = "GMT Standard Time",
        ["Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London"] = "GMT Standard Time",
        ["Monrovia, Reykjavik"] = "Greenwich Standard Time",
        ["Casablanca"] = "Morocco Standard Time",
        ["Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"] = "W. Europe Standard Time",
        ["Belgrade, Bratislava, Budapest, Ljubljana, Prague"] = "Central Europe Standard Time",
        ["Brussels, Copenhagen, Madrid, Paris"] = "Romance Standard Time",
        ["Sarajevo, Skopje, Warsaw, Zagreb"] = "Central European Standard Time",
        ["West Central Africa"] = "W. Central Africa Standard Time",
        ["Athens, Bucharest"] = "GTB Standard Time",
        ["Athens, Bucharest, Istanbul"] = "GTB Standard Time",
        ["Cairo"] = "Egypt Standard Time",
        ["Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius"] = "FLE Standard Time",
        ["Helsinki, Kiev, Riga, Sofia, Tallinn, Vilnius"] = "FLE Standard Time",
        ["Jerusalem"] = "Israel Standard Time",
        ["Harare, Pretoria"] = "South Africa Standard Time",
        ["Istanbul"] = "Turkey Standard Time",
        ["Moscow, St. Petersburg"] = "Russian Standard Time",
        ["Moscow, St. Petersburg, Volgograd"] = "Russian Standard Time",
        ["Kuwait, Riyadh"] = "Arab Standard Time",
        ["Nairobi"] = "E. Africa Standard Time",
        ["Tehran"] = "Iran Standard Time",
        ["Abu Dhabi, Muscat"] = "Arabian Standard Time",
        ["Kabul"] = "Afghanistan Standard Time",
        ["Islamabad, Karachi"] = "Pakistan Standard Time",
        ["Chennai, Kolkata, Mumbai, New Delhi"] = "India Standard Time",
        ["Kathmandu"] = "Nepal Standard Time",
        ["Dhaka"] = "Bangladesh Standard Time",
        ["Bangkok, Hanoi, Jakarta"] = "SE Asia Standard Time",
        ["Beijing, Chongqing, Hong Kong, Urumqi"] = "China Standard Time",
        ["Kuala Lumpur, Singapore"] = "Singapore Standard Time",
        ["Perth"] = "W. Australia Standard Time",
        ["Taipei"] = "Taipei Standard Time",
        ["Osaka, Sapporo, Tokyo"] = "Tokyo Standard Time",
        ["Seoul"] = "Korea Standard Time",
        ["Adelaide"] = "Cen. Australia Standard Time",
        ["Darwin"] = "AUS Central Standard Time",
        ["Brisbane"] = "E. Australia Standard Time",
        ["Canberra, Melbourne, Sydney"] = "AUS Eastern Standard Time",
        ["Hobart"] = "Tasmania Standard Time",
        ["Auckland, Wellington"] = "New Zealand Standard Time",
        ["Fiji"] = "Fiji Standard Time",
    };

    /// <summary>The IANA zone of a Windows display name, or <see langword="null"/> when it is not one.</summary>
    public static TimeZoneInfo? FromDisplayName(string tzid)
    {
        var match = OffsetPrefix().Match(tzid);
        if (!match.Success)
        {
            return null;
        }

        var name = Spaces().Replace(tzid[match.Length..].Replace(" / ", ", ", StringComparison.Ordinal), " ").Trim();
        return ByName.TryGetValue(name, out var windowsId)
            && TimeZoneInfo.TryConvertWindowsIdToIanaId(windowsId, out var iana)
            && TimeZoneInfo.TryFindSystemTimeZoneById(iana, out var zone)
            ? zone
            : null;
    }

    [GeneratedRegex(@"^\s*\((?:UTC|GMT)(?:\s*[+-]\s*\d{1,2}(?:[:.]\d{2})?)?\)\s*", RegexOptions.CultureInvariant)]
    private static partial Regex OffsetPrefix();

    [GeneratedRegex(@"\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Spaces();
}
