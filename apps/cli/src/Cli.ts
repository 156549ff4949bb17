/**
 * The `trail` command tree, generated from @effect/cli schemas. Commands only parse, call a
 * service and print (see Output.ts for the output contract).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Path from "@effect/platform/Path"
import {
  UsageError,
  type FolderPath,
  type PathOutsideRoot,
  type ClaimResult,
  type Completion,
  type Outcome,
  type Sweep,
  TaskStatus,
  type WorkItem
} from "@trail/domain"
// The option schemas come from their modules: the package itself is loaded on first use (build.mjs).
import { AgentId, TaskName } from "@trail/domain/ids"
import { Strategy, WorkItemStatus } from "@trail/domain/model"
import { Project, Scheduler } from "@trail/scheduler"
import { Database } from "@trail/store"
import { type Context, Effect, Layer, Option, Schema, Stream } from "effect"
import { cwd, envVar, explicitRoot, foundCount, pretty, print, printStream, trail } from "./Common.js"
import { emitText, ExitCode } from "./Output.js"
import { inboxCommands, skipItem } from "./InboxCommands.js"
import { kinds } from "./KindCommands.js"
import { resultsCommands, sweepNumber } from "./ResultsCommands.js"
import { gcWorkers, workerCommands } from "./WorkerCommands.js"
import { archiveBeforeOption, archiveDate, archiveIfAsked } from "./Archiving.js"
import { checkpointCommands, purgeCheckpoints } from "./CheckpointCommands.js"
import { bar, bold, card, cyan, dim, green, tableInChunks, time, yellow } from "./Pretty.js"

// ---------------------------------------------------------------------------------------------
// Options shared by commands

const task = Options.text("task").pipe(
  Options.withSchema(TaskName),
  Options.withDescription("The task (coverage campaign), e.g. p0-bugs.")
)

const agent = Options.text("agent").pipe(
  Options.withSchema(AgentId),
  Options.optional,
  Options.withDescription('Who is asking (default: $TRAIL_AGENT, then $TRAIL_WORKER_ID, then "anonymous").')
)

const folderPath = Options.text("path").pipe(
  Options.withDescription("The folder, relative to the root (./src/api/ and src/api are the same).")
)

const strategy = Options.choice("strategy", Strategy.literals).pipe(
  Options.optional,
  Options.withDescription(
    "Ordering for the sweeps this task opens from now on; remembered per task (default: the task's last --strategy, then strategy.default)."
  )
)

const found = Options.integer("found").pipe(
  Options.withSchema(foundCount),
  Options.optional,
  Options.withDescription("Number of findings in this folder (default: not reported).")
)
const clean = Options.boolean("clean").pipe(Options.withDescription("Nothing was found (same as --found 0)."))

/** The outcome of `--found N` / `--clean` (done and skip take both, as in the Rust trail). */
const outcomeOf = (found: Option.Option<number>, clean: boolean): Effect.Effect<Outcome, UsageError> => {
  if (Option.isSome(found) && clean) return new UsageError({ message: "--found and --clean exclude each other" })
  return Effect.succeed(
    Option.isSome(found) ? { _tag: "found", count: found.value } : clean ? { _tag: "clean" } : { _tag: "unreported" }
  )
}

// ---------------------------------------------------------------------------------------------
// The root command and how subcommands reach the scheduler

const resolveAgent = (flag: Option.Option<AgentId>) =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () =>
      Effect.gen(function* () {
        const fromEnv = Option.firstSomeOf([yield* envVar("TRAIL_AGENT"), yield* envVar("TRAIL_WORKER_ID")])
        return yield* Schema.decode(AgentId)(Option.getOrElse(fromEnv, () => "anonymous")).pipe(
          Effect.mapError((error) => new UsageError({ message: `$TRAIL_AGENT / $TRAIL_WORKER_ID: ${error.message}` }))
        )
      })
  })

/** The walk worker bundled next to the CLI (dist/walk-worker.cjs); absent when not bundled. */
const walkWorker = typeof __dirname === "string" ? `${__dirname}/walk-worker.cjs` : undefined

/**
 * The scheduler for a root, with the bundled walk worker, and its Database (for read-only views
 * such as Visits). Only `init` may `create` the store.
 */
const schedulerFor = (settings: Context.Tag.Service<Scheduler.Settings>, create: boolean) =>
  Scheduler.layerOn(settings, { walkWorker }).pipe(
    Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile, create }))
  )

/**
 * The scheduler of the root found from `--root` / `$TRAIL_ROOT` / the cwd, with that root's
 * `Scheduler.Settings` and its Database: each command that needs it gets it once, through
 * `Command.provide`.
 */
const SchedulerLive = Layer.unwrapEffect(
  Effect.gen(function* () {
    const explicit = yield* explicitRoot
    const project = yield* Project.findRoot({ explicit, cwd: yield* cwd })
    const config = yield* Project.loadConfig(project)
    const settings = { project, config }
    return schedulerFor(settings, false).pipe(Layer.provideMerge(Layer.succeed(Scheduler.Settings, settings)))
  })
)

/** Runs `f` with the provided scheduler ({@link SchedulerLive}) and its root. */
const withScheduler = <A, E, R>(
  f: (scheduler: Scheduler.SchedulerShape, project: Project.Project) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(Effect.all([Scheduler.Scheduler, Scheduler.Settings]), ([scheduler, settings]) =>
    f(scheduler, settings.project)
  )

const folderOf = (
  project: Project.Project,
  raw: string
): Effect.Effect<FolderPath, UsageError | PathOutsideRoot, Path.Path> =>
  Effect.flatMap(Path.Path, (path): Effect.Effect<FolderPath, UsageError | PathOutsideRoot> =>
    raw === ""
      ? Effect.fail(new UsageError({ message: "--path must not be empty" }))
      : Project.toFolderPath(path, project.root, raw)
  )

// ---------------------------------------------------------------------------------------------
// init

const init = Command.make("init", { pretty }, ({ pretty }) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const explicit = yield* explicitRoot
    const root = path.resolve(
      yield* cwd,
      Option.getOrElse(explicit, () => ".")
    )
    const project = Project.projectAt(path, root)
    const config = yield* Project.loadConfig(project)
    const wroteExample = yield* Project.layOut(project)
    const progress = process.stderr.isTTY === true
    const result = yield* Effect.flatMap(Scheduler.Scheduler, (scheduler) =>
      scheduler.scan(
        progress
          ? { onProgress: (p) => process.stderr.write(`\r\u001b[2Kscanning… ${p.folders} folders, ${p.files} files`) }
          : {}
      )
    ).pipe(
      Effect.ensuring(Effect.sync(() => progress && process.stderr.write("\r\u001b[2K"))),
      Effect.provide(schedulerFor({ project, config }, true))
    )
    yield* print(
      {
        folders: result.folders,
        excluded: result.excluded,
        wrote_example_config: wroteExample,
        unreadable: result.unreadable
      },
      {
        pretty,
        render: (r) =>
          card(`trail initialised in ${root}`, [
            ["folders", r.folders],
            ["excluded", r.excluded],
            ["example config", r.wrote_example_config ? "wrote .trail.toml.example" : "kept (a .trail.toml exists)"],
            ...(r.unreadable.length === 0 ? [] : [["unreadable (left out)", r.unreadable.join(", ")] as const])
          ])
      }
    )
  })
).pipe(
  Command.withDescription("Scan the root (honouring .gitignore/.ignore) and register its folders; re-run to rescan.")
)

// ---------------------------------------------------------------------------------------------
// next

const claimJson = (result: ClaimResult) => {
  switch (result._tag) {
    case "Claimed":
      return {
        status: "ok" as const,
        task: result.task,
        sweep: result.sweep,
        path: result.path,
        score: result.score,
        lease_expires_at: result.lease_expires_at,
        remaining: result.remaining
      }
    case "SweepCompleted":
      return {
        status: "sweep-complete" as const,
        task: result.task,
        sweep: result.sweep,
        covered: result.covered,
        total: result.total,
        ...(result.total === 0 ? { note: "no folders are registered; run `trail init` in the root" } : {})
      }
    case "NoneAvailable":
      return {
        status: "none-available" as const,
        task: result.task,
        sweep: result.sweep,
        leased_outstanding: result.leased_outstanding
      }
  }
}

const renderClaim = (json: ReturnType<typeof claimJson>) => {
  switch (json.status) {
    case "ok":
      return card(`${green("▸")} ${json.path}`, [
        ["task", `${json.task} · sweep ${json.sweep}`],
        ["score", json.score],
        ["lease until", time(json.lease_expires_at)],
        ["remaining", json.remaining]
      ])
    case "sweep-complete":
      return card(`${green("✓")} sweep ${json.sweep} of ${json.task} is complete`, [
        ["covered", `${json.covered}/${json.total}`],
        ...("note" in json ? [["note", json.note] as const] : [])
      ])
    case "none-available":
      return card(`${yellow("…")} nothing to hand out right now`, [
        ["task", `${json.task} · sweep ${json.sweep}`],
        ["leased elsewhere", json.leased_outstanding],
        ["hint", "retry shortly: leases expire or are completed"]
      ])
  }
}

const next = Command.make(
  "next",
  {
    task,
    agent,
    strategy,
    autoSweep: Options.boolean("auto-sweep").pipe(
      Options.withDescription("Open the next sweep when this one is complete.")
    ),
    pretty
  },
  (args) =>
    withScheduler((scheduler) =>
      Effect.gen(function* () {
        const agentId = yield* resolveAgent(args.agent)
        const result = yield* scheduler.claim({
          task: args.task,
          agent: agentId,
          strategy: Option.getOrUndefined(args.strategy),
          autoSweep: args.autoSweep
        })
        const json = claimJson(result)
        const exit =
          json.status === "ok"
            ? ExitCode.ok
            : json.status === "sweep-complete"
              ? ExitCode.sweepComplete
              : ExitCode.noneAvailable
        yield* print(json, { pretty: args.pretty, exit, render: renderClaim })
      })
    )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription(
    "Lease the next folder of the task's sweep. Exit 0 ok, 3 sweep complete, 4 none available (retry)."
  )
)

// ---------------------------------------------------------------------------------------------
// done / skip / release

const completionJson = (c: Completion) => ({
  status: c.status,
  task: c.task,
  sweep: c.sweep,
  path: c.path,
  remaining: c.remaining,
  sweep_complete: c.sweep_complete
})

const renderCompletion = (c: ReturnType<typeof completionJson>) =>
  card(`${green("✓")} ${c.path} ${c.status}`, [
    ["task", `${c.task} · sweep ${c.sweep}`],
    ["remaining", c.remaining],
    ["sweep complete", c.sweep_complete ? "yes" : "no"]
  ])

const done = Command.make(
  "done",
  {
    task,
    path: folderPath,
    agent,
    found,
    clean,
    pretty
  },
  (args) =>
    withScheduler((scheduler, project) =>
      Effect.gen(function* () {
        const outcome = yield* outcomeOf(args.found, args.clean)
        const agentId = yield* resolveAgent(args.agent)
        const path = yield* folderOf(project, args.path)
        const completion = yield* scheduler.complete({ task: args.task, path, agent: agentId, status: "done", outcome })
        yield* print(completionJson(completion), { pretty: args.pretty, render: renderCompletion })
      })
    )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription(
    "Mark your leased (or a still pending) folder done; repeating it is a no-op. Another agent's lease refuses it (not-lease-holder)."
  )
)

/** `trail skip` serves two nouns: a folder of a sweep (`--task --path`) and an inbox item (ITEM). */
const skip = Command.make(
  "skip",
  {
    task: task.pipe(Options.optional),
    path: folderPath.pipe(Options.optional),
    agent,
    found,
    clean,
    reason: Options.text("reason").pipe(
      Options.optional,
      Options.withDescription("Why the folder was skipped (default: none given).")
    ),
    item: Args.text({ name: "item" }).pipe(
      Args.optional,
      Args.withDescription("An inbox item to send to the back for 30 s (instead of --task/--path).")
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      if (Option.isSome(args.item)) {
        if (Option.isSome(args.task) || Option.isSome(args.path) || Option.isSome(args.found) || args.clean)
          return yield* new UsageError({ message: "give either ITEM (an inbox item) or --task and --path (a folder)" })
        return yield* skipItem(args.item.value, args.pretty)
      }
      if (Option.isNone(args.task) || Option.isNone(args.path))
        return yield* new UsageError({
          message: "trail skip --task T --path FOLDER skips a folder; trail skip ITEM skips an inbox item"
        })
      const [taskName, rawPath] = [args.task.value, args.path.value]
      // `skip ITEM` needs the inbox, not the scheduler: only this branch opens it.
      yield* withScheduler((scheduler, project) =>
        Effect.gen(function* () {
          const outcome = yield* outcomeOf(args.found, args.clean)
          const agentId = yield* resolveAgent(args.agent)
          const path = yield* folderOf(project, rawPath)
          const completion = yield* scheduler.complete({
            task: taskName,
            path,
            agent: agentId,
            status: "skipped",
            outcome,
            reason: Option.getOrUndefined(args.reason)
          })
          yield* print(completionJson(completion), { pretty: args.pretty, render: renderCompletion })
        })
      ).pipe(Effect.provide(SchedulerLive))
    })
).pipe(
  Command.withDescription(
    "Mark a leased (or still pending) folder skipped (it still counts as covered), or send an inbox ITEM to the back for 30 s."
  )
)

const release = Command.make("release", { task, path: folderPath, agent, pretty }, (args) =>
  withScheduler((scheduler, project) =>
    Effect.gen(function* () {
      const path = yield* folderOf(project, args.path)
      const released = yield* scheduler.release({ task: args.task, path, agent: Option.getOrUndefined(args.agent) })
      yield* print(
        {
          status: "released" as const,
          task: released.task,
          sweep: released.sweep,
          path: released.path,
          remaining: released.remaining
        },
        {
          pretty: args.pretty,
          render: (r) =>
            card(`↩ ${r.path} released`, [
              ["task", `${r.task} · sweep ${r.sweep}`],
              ["remaining", r.remaining]
            ])
        }
      )
    })
  )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription("Return a leased folder to the pool early (with --agent, only the holder may).")
)

// ---------------------------------------------------------------------------------------------
// status / list

/** `trail status` and `sweep show` of a task with no sweep (exit 0, as in the Rust trail). */
const noSweepCounts = { total: 0, done: 0, leased: 0, pending: 0, skipped: 0 } as const

const statusJson = (s: TaskStatus) => ({
  task: s.task,
  sweep: s.sweep ?? 0,
  sweep_status: s.sweep_status ?? ("none" as const),
  total: s.total,
  done: s.done,
  leased: s.leased,
  pending: s.pending,
  skipped: s.skipped,
  percent: s.percent
})

const renderStatus = (s: ReturnType<typeof statusJson>) =>
  [
    bold(`${s.task} · ${s.sweep_status === "none" ? "no sweep yet" : `sweep ${s.sweep} (${s.sweep_status})`}`),
    `  ${bar(s.percent)}`,
    `  ${green(`${s.done} done`)} · ${dim(`${s.skipped} skipped`)} · ${yellow(`${s.leased} leased`)} · ${s.pending} pending · ${s.total} total`
  ].join("\n")

const status = Command.make("status", { task, pretty }, (args) =>
  withScheduler((scheduler) =>
    scheduler.status(args.task).pipe(
      // An unknown task answers as a task with no sweep does (the store's null sweep).
      Effect.catchTag("TaskNotFound", () =>
        Effect.succeed(
          new TaskStatus({ task: args.task, sweep: null, sweep_status: null, ...noSweepCounts, percent: 0 })
        )
      ),
      Effect.map(statusJson),
      Effect.flatMap((s) => print(s, { pretty: args.pretty, render: renderStatus }))
    )
  )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription(
    "Counters of the task's current sweep (expired leases count as pending; percent counts done only). A task with no sweep answers sweep 0, sweep_status none."
  )
)

/** The work items as they are read, or none when the task has no sweep (`[]`, as in the Rust trail). */
const itemsOrNone = (
  scheduler: Scheduler.SchedulerShape,
  task: TaskName,
  options: { readonly state: WorkItemStatus | undefined; readonly limit: number | undefined }
) =>
  scheduler
    .items(task, options)
    .pipe(Stream.catchTags({ TaskNotFound: () => Stream.empty, NoSweep: () => Stream.empty }))

/** An item as `trail list` prints it (SPEC §1's fields, then who covered it and what they found). */
const listedItem = (i: WorkItem) => ({
  path: i.path,
  status: i.status,
  score: i.score,
  lease_owner: i.lease_owner,
  lease_expires_at: i.lease_expires_at,
  visited_at: i.visited_at,
  found: i.found,
  agent: i.agent
})

/** The `--pretty` table of a listing, chunk by chunk. */
const renderListed = () => {
  const render = tableInChunks(
    [
      ["path", "PATH"],
      ["status", "STATUS"],
      ["score", "SCORE"],
      ["found", "FOUND"],
      ["who", "AGENT"],
      ["lease_expires_at", "LEASE UNTIL"],
      ["visited_at", "LAST VISIT"]
    ],
    (row, line) => (row.status === "leased" ? yellow(line) : row.status === "pending" ? line : dim(line))
  )
  return (rows: ReadonlyArray<ReturnType<typeof listedItem>>, first: boolean) =>
    render(
      rows.map((r) => ({ ...r, who: r.agent ?? r.lease_owner })),
      first
    )
}

const listLimit = Options.integer("limit").pipe(
  Options.withSchema(Schema.Int.pipe(Schema.positive({ message: () => "--limit must be a positive whole number" }))),
  Options.optional,
  Options.withDescription("At most this many items, the highest scores (default: all, printed as they are read).")
)

const list = Command.make(
  "list",
  {
    task,
    state: Options.choice("state", WorkItemStatus.literals).pipe(
      Options.optional,
      Options.withDescription("Only items in this state (default: every state).")
    ),
    limit: listLimit,
    pretty
  },
  (args) =>
    withScheduler((scheduler) =>
      printStream(
        // Who covered each finished folder and what they found come with the items (one join).
        itemsOrNone(scheduler, args.task, {
          state: Option.getOrUndefined(args.state),
          limit: Option.getOrUndefined(args.limit)
        }).pipe(Stream.map(listedItem)),
        { pretty: args.pretty, empty: dim("(none)"), render: renderListed() }
      )
    )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription(
    "Work items of the current sweep, highest score first, with who covered each and what they found ([] when there is no sweep); printed as they are read, --limit N stops after N."
  )
)

// ---------------------------------------------------------------------------------------------
// sweep new / sweep show

/** A sweep; `sweep_status`, `started_at`, `completed_at` are the Rust trail's names for `status`, `opened_at`, `closed_at`. */
const sweepJson = (s: Sweep) => ({
  task: s.task,
  sweep: s.sweep,
  status: s.status,
  sweep_status: s.status,
  strategy: s.strategy,
  total: s.total,
  done: s.done,
  skipped: s.skipped,
  leased: s.leased,
  pending: s.pending,
  opened_at: s.opened_at,
  closed_at: s.closed_at,
  started_at: s.opened_at,
  completed_at: s.closed_at,
  items_pruned_at: s.items_pruned_at
})

/** `sweep show` of a task with no sweep. */
const noSweepJson = (task: TaskName) => ({
  task,
  sweep: 0,
  status: "none" as const,
  sweep_status: "none" as const,
  strategy: null,
  ...noSweepCounts,
  opened_at: null,
  closed_at: null,
  started_at: null,
  completed_at: null,
  items_pruned_at: null
})

const renderSweep = (s: ReturnType<typeof sweepJson> | ReturnType<typeof noSweepJson>) =>
  card(
    `${s.task} · ${s.status === "none" ? "no sweep yet" : `sweep ${s.sweep} (${s.status === "active" ? cyan("active") : green("complete")})`}`,
    [
      ["strategy", s.strategy],
      ["total", s.total],
      ["done", s.done],
      ["skipped", s.skipped],
      ["leased", s.leased],
      ["pending", s.pending],
      ["opened", time(s.opened_at)],
      ["closed", time(s.closed_at)],
      ["items", s.items_pruned_at === null ? null : `pruned ${time(s.items_pruned_at)} (history.keep_sweeps)`]
    ]
  )

const sweepNew = Command.make(
  "new",
  { task, strategy, rescan: Options.boolean("rescan").pipe(Options.withDescription("Rescan the root first.")), pretty },
  (args) =>
    withScheduler((scheduler) =>
      Effect.gen(function* () {
        if (args.rescan) yield* scheduler.scan()
        const sweep = yield* scheduler.newSweep({ task: args.task, strategy: Option.getOrUndefined(args.strategy) })
        yield* print(sweepJson(sweep), { pretty: args.pretty, render: renderSweep })
      })
    )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription("Open the task's next sweep (an error while one is active).")
)

const sweepOption = Options.integer("sweep").pipe(
  Options.withSchema(sweepNumber),
  Options.optional,
  Options.withDescription("Show this sweep of the task (default: its current one); an unknown number is no-sweep.")
)

const sweepShow = Command.make("show", { task, sweep: sweepOption, pretty }, (args) =>
  withScheduler((scheduler) =>
    scheduler.showSweep(args.task, Option.getOrUndefined(args.sweep)).pipe(
      Effect.map(sweepJson),
      Effect.catchTags({
        TaskNotFound: () => Effect.succeed(noSweepJson(args.task)),
        NoSweep: (error) => (Option.isSome(args.sweep) ? Effect.fail(error) : Effect.succeed(noSweepJson(args.task)))
      }),
      Effect.flatMap((sweep) => print(sweep, { pretty: args.pretty, render: renderSweep }))
    )
  )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription(
    "Show the task's current sweep (sweep 0, sweep_status none when there is none), or --sweep N; items_pruned_at says when gc pruned its items."
  )
)

const sweep = Command.make("sweep").pipe(
  Command.withDescription("Open or show sweeps."),
  Command.withSubcommands([sweepNew, sweepShow])
)

// ---------------------------------------------------------------------------------------------
// reset / gc

const reset = Command.make(
  "reset",
  { task, all: Options.boolean("all").pipe(Options.withDescription("Also forget the task's visit history.")), pretty },
  (args) =>
    withScheduler((scheduler) =>
      Effect.flatMap(
        scheduler
          .reset(args.task, { all: args.all })
          .pipe(
            Effect.catchTag("TaskNotFound", () =>
              Effect.succeed({ task: args.task, cleared_sweeps: 0, cleared_history: args.all, cleared_visits: 0 })
            )
          ),
        (r) =>
          print(
            {
              task: r.task,
              cleared_sweeps: r.cleared_sweeps,
              cleared_history: r.cleared_history,
              cleared_visits: r.cleared_visits
            },
            {
              pretty: args.pretty,
              render: (r) =>
                card(`reset ${r.task}`, [
                  ["sweeps cleared", r.cleared_sweeps],
                  ["history cleared", r.cleared_history ? `yes (${r.cleared_visits} visits)` : "no"]
                ])
            }
          )
      )
    )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription("Delete the task's sweeps (and with --all its history); the next `next` opens sweep 1.")
)

const gc = Command.make(
  "gc",
  {
    vacuum: Options.boolean("vacuum").pipe(Options.withDescription("Compact the database file.")),
    reconcile: Options.boolean("reconcile").pipe(
      Options.withDescription("Rebuild every sweep's counters from its items.")
    ),
    workers: Options.boolean("workers").pipe(
      Options.withDescription(
        "Also prune finished workers: their windows, .trail/workers/<id>/ and worktrees (not one with an unpromoted change set)."
      )
    ),
    olderThan: Options.text("older-than").pipe(
      Options.optional,
      Options.withDescription(
        "With --workers: only workers finished at least this long ago (90s, 20m, 2h, 7d; default 0)."
      )
    ),
    force: Options.boolean("force").pipe(
      Options.withDescription("With --workers: remove worktrees with unpromoted change sets too.")
    ),
    archiveBefore: archiveBeforeOption,
    pretty
  },
  (args) =>
    withScheduler((scheduler) =>
      Effect.flatMap(
        // The date is checked before anything is pruned; the archive runs before the vacuum so
        // that the vacuum compacts what it freed.
        Effect.flatMap(archiveDate(args.archiveBefore), (before) =>
          Effect.all([
            archiveIfAsked(before),
            scheduler.gc({ vacuum: args.vacuum, reconcile: args.reconcile }),
            args.workers
              ? Effect.map(gcWorkers(args.olderThan, args.force), Option.some)
              : Effect.succeed(Option.none()),
            purgeCheckpoints
          ])
        ),
        ([archived, g, w, purged]) =>
          print(
            {
              reclaimed_leases: g.reclaimed_leases,
              pruned_work_items: g.pruned_work_items,
              reconciled_sweeps: g.reconciled_sweeps,
              counter_drift: g.counter_drift,
              vacuumed: g.vacuumed,
              ...purged,
              ...(Option.isSome(w) ? { workers: w.value } : {}),
              ...(Option.isSome(archived)
                ? {
                    archived_events: archived.value.archived_events,
                    deleted_events: archived.value.deleted_events,
                    archive_files: archived.value.files
                  }
                : {})
            },
            {
              pretty: args.pretty,
              render: (g) =>
                card("gc", [
                  ["leases reclaimed", g.reclaimed_leases],
                  ["work items pruned", g.pruned_work_items],
                  ["sweeps reconciled", g.reconciled_sweeps],
                  ["counter drift fixed", g.counter_drift],
                  ["vacuumed", g.vacuumed ? "yes" : "no"],
                  ["checkpoints purged", g.purged_checkpoints.length === 0 ? null : g.purged_checkpoints.join(", ")],
                  ...(g.archived_events === undefined
                    ? []
                    : ([["events archived", `${g.archived_events} ${g.archive_files?.join(", ") ?? ""}`]] as const)),
                  ...(Option.isSome(w)
                    ? ([
                        ["windows closed", w.value.windows_closed],
                        ["worker dirs removed", w.value.dirs_removed],
                        ["worktrees removed", w.value.worktrees_removed],
                        ["workers kept", w.value.kept.map((k) => `${k.id}: ${k.reason}`).join("; ") || null]
                      ] as const)
                    : [])
                ])
            }
          )
      )
    )
).pipe(
  Command.provide(SchedulerLive),
  Command.withDescription(
    "Reclaim expired leases, prune the work items of finished sweeps beyond history.keep_sweeps (counters and visits stay), purge consumed checkpoints past their retention; optionally reconcile counters, vacuum, and archive old events (--archive-before DATE)."
  )
)

// ---------------------------------------------------------------------------------------------
// completions

const completions = Command.make(
  "completions",
  {
    shell: Args.choice([
      ["bash", "bash"],
      ["zsh", "zsh"],
      ["fish", "fish"],
      ["sh", "sh"]
    ] as const).pipe(Args.withDescription("bash, zsh, fish or sh"))
  },
  ({ shell }): Effect.Effect<void> =>
    Effect.gen(function* () {
      // `command` is the assembled tree below; the handler only runs after it exists.
      const lines =
        shell === "zsh"
          ? yield* Command.getZshCompletions(command, "trail")
          : shell === "fish"
            ? yield* Command.getFishCompletions(command, "trail")
            : yield* Command.getBashCompletions(command, "trail")
      yield* emitText(lines.join("\n"))
    })
).pipe(
  Command.withDescription(
    "Print a shell completion script (the one output that is not JSON). sh gets the bash script: source it from bash-compatible shells."
  )
)

export const command = trail.pipe(
  Command.withSubcommands([
    init,
    next,
    done,
    skip,
    release,
    status,
    list,
    ...resultsCommands,
    sweep,
    reset,
    gc,
    ...workerCommands,
    kinds,
    ...inboxCommands,
    ...checkpointCommands,
    completions
  ])
)
