/**
 * `trail results`: what a sweep found, folder by folder (see Results.ts for how the scheduler's
 * visits and the workers' results are put together).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { SweepNumber, TaskName } from "@trail/domain/ids"
import { Live } from "@trail/supervisor"
import { Effect, Option } from "effect"

import { pretty, print } from "./Common.js"
import { renderResults, sweepResults } from "./Results.js"
import { rootLayer } from "./WorkerCommands.js"

/** The root's Workers and its Database (the visits are read through its SqlClient). */
const ResultsLive = rootLayer((settings) => Live.workersLayer(settings))

/** `--sweep N` (results, sweep show): the domain's SweepNumber, its error naming the flag. */
export const sweepNumber = SweepNumber.annotations({
  message: (issue) => `--sweep must be 1 or more, got ${String(issue.actual)}`
})

const results = Command.make(
  "results",
  {
    task: Options.text("task").pipe(
      Options.withSchema(TaskName),
      Options.withDescription("The task whose findings to show, e.g. p0-bugs.")
    ),
    sweep: Options.integer("sweep").pipe(
      Options.withSchema(sweepNumber),
      Options.optional,
      Options.withDescription("Which sweep (1, 2, …). Default: the task's latest sweep.")
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const found = yield* sweepResults(args.task, Option.getOrUndefined(args.sweep))
      yield* print(found.results, {
        pretty: args.pretty,
        render: (rows) => renderResults(found.task, found.sweep, rows)
      })
    })
).pipe(
  Command.provide(ResultsLive),
  Command.withDescription(
    "Show what a sweep found: each folder with findings or a worker's result (outcome, summary, evidence, recommendations), most findings first."
  )
)

export const resultsCommands = [results] as const
