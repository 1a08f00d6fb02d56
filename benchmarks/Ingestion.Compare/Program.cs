using Ingestion.Compare.Harness;

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};

return await CompareRunner.RunAsync(args, Console.Out, Console.Error, cts.Token);
