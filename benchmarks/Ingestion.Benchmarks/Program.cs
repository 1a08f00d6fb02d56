using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Ingestion.Benchmarks -- --filter '*'
// Needs INGESTION_TEST_PG (a server where the user may create databases); each suite makes its own database.
// On a loaded 2-core machine BenchmarkDotNet's build of its boilerplate project can take minutes, hence the
// longer build timeout; add --inProcess to skip that build.
var config = ManualConfig.Create(DefaultConfig.Instance).WithBuildTimeout(TimeSpan.FromMinutes(10));
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
