using System.CommandLine;
using Ingestion.CommandLine.Output;

namespace Ingestion.CommandLine.Commands;

/// <summary><c>state SOURCE [--reset | --set-cursor V]</c>.</summary>
internal static class StateCommandFactory
{
    public static Command Create(IngestionCommandContext context)
    {
        var source = new Argument<string>("SOURCE") { Description = "The source." };
        var reset = new Option<bool>("--reset") { Description = "Forget the cursor and HTTP validators: the next run reads everything." };
        var cursor = new Option<string?>("--set-cursor") { Description = "Set the cursor to this value (saved as given)." };
        var requestedBy = new Option<string?>("--requested-by") { Description = "Who makes the change (recorded in the job history); defaults to the user name." };
        var command = new Command("state", "Show a source's saved state, reset it, or set its cursor (changes are recorded in the job history).") { source, reset, cursor, requestedBy };
        command.Validators.Add(r =>
        {
            if (r.GetValue(reset) && r.GetValue(cursor) is not null)
            {
                r.AddError("Use --reset or --set-cursor, not both.");
            }
        });
        command.SetAction(async (parse, ct) =>
        {
            var operations = InspectCommands.Operations(context);
            var name = parse.GetValue(source)!;
            var actor = parse.GetValue(requestedBy) ?? Environment.UserName;
            var state = parse.GetValue(reset) ? await Edit(() => operations.ResetStateAsync(name, actor, ct)).ConfigureAwait(false)
                : parse.GetValue(cursor) is { } value ? await Edit(() => operations.SetCursorAsync(name, value, actor, ct)).ConfigureAwait(false)
                : await operations.GetStateAsync(name, ct).ConfigureAwait(false);
            Tables.Line(
                context,
                "state",
                ("source", name),
                ("cursor", state.Cursor),
                ("etag", state.ETag),
                ("last_modified", state.LastModified),
                ("content_hash", state.ContentHash),
                ("last_checked", state.LastChecked),
                ("last_imported", state.LastImported),
                ("last_success", state.LastSuccess));
            return ExitCodes.Success;
        });
        return command;
    }

    private static async Task<SourceState> Edit(Func<Task<SourceState>> edit)
    {
        try
        {
            return await edit().ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            // The source's run lock is held: a run is going on.
            throw new CommandLineException(ExitCodes.Locked, e.Message);
        }
    }
}
