/**
 * `trail results`: what a sweep found, folder by folder (see Results.ts for how the scheduler's
 * visits and the workers' results are put together).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { TaskName, UsageError } from "@trail/domain"
import { Effect, Option } from "effect"

import { pretty, print } from "./Common.js"
import { renderResults, resultsOf } from "./Results.js"
import { rootSettings } from "./WorkerCommands.js"

const results = Command.make(
  "results",
  {
    task: Options.text("task").pipe(
      Options.withSchema(TaskName),
      Options.withDescription("The task whose findings to show, e.g. p0-bugs.")
    ),
    sweep: Options.integer("sweep").pipe(
      Options.optional,
      Options.withDescription("Which sweep (1, 2, …). Default: the task's latest sweep.")
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const sweep = Option.getOrUndefined(args.sweep)
      if (sweep !== undefined && sweep < 1)
        return yield* new UsageError({ message: `--sweep must be 1 or more, got ${sweep}` })
      const settings = yield* rootSettings
      const found = yield* resultsOf(settings, args.task, sweep)
      yield* print(found.results, {
        pretty: args.pretty,
        render: (rows) => renderResults(found.task, found.sweep, rows)
      })
    })
).pipe(
  Command.withDescription(
    "Show what a sweep found: each folder with findings or a worker's result (outcome, summary, evidence, recommendations), most findings first."
  )
)

export const resultsCommands = [results] as const
