// The crash matrix behind scripts/faults.sh. Two verbs:
//   host  <connection string> <rows> <host name> <keep-alive ms>   one ingestion run of the "faults" source (a process the driver kills)
//   drive <rows> <kills> <seed>                                      the matrix: kills, terminated connections, server restarts, two hosts
// The driver reads the admin connection string from INGESTION_TEST_PG, and PG_BIN / PG_WORK_DIR (set by scripts/pg.sh) to restart the server.
using System.Globalization;
using Ingestion.Faults;

return args.Length > 0 && args[0] == "host" ? await FaultHost.RunAsync(args[1], long.Parse(args[2], CultureInfo.InvariantCulture), args[3], int.Parse(args[4], CultureInfo.InvariantCulture), args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : null)
    : args.Length > 0 && args[0] == "drive" ? await FaultDriver.RunAsync(long.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture))
    : Usage();

static int Usage()
{
    Console.Error.WriteLine("usage: Ingestion.Faults host <connection string> <rows> <host name> <keep-alive ms> [<key index max rows>] | drive <rows> <kills> <seed>");
    return 2;
}
