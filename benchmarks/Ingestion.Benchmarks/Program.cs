using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Ingestion.Benchmarks -- --filter '*'
// Needs INGESTION_TEST_PG (a server where the user may create databases); each suite makes its own database.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
