using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Ingestion.Benchmarks -- --filter '*'
// Needs INGESTION_TEST_PG (a server where the user may create databases); each suite makes its own database.
// Every invocation writes thousands of rows and the tables are reset before each iteration, so one
// invocation per iteration; command-line job options (--inProcess, --iterationCount ...) adjust this job.
// On a loaded 2-core machine BenchmarkDotNet's build of its boilerplate project can take minutes, hence the
// longer build timeout; --inProcess skips that build.
var job = Job.Default
    .WithWarmupCount(2)
    .WithIterationCount(8)
    .WithInvocationCount(1)
    .WithUnrollFactor(1)
    .AsDefault();
var config = ManualConfig.Create(DefaultConfig.Instance)
    .AddJob(job)
    .WithBuildTimeout(TimeSpan.FromMinutes(10));
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
