/**
 * The worker fleet's commands (SPEC §2): the protocol a worker calls (`trail worker todos|wait|
 * done|fail|note`, identity from `$TRAIL_WORKER_ID`), the human's commands (`spawn`, `workers`,
 * `worker show`, `tell`, `attach`, `kill`, `respawn`, `promote`, `discard`, `events`) and
 * `trail supervise`.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as PlatformCommand from "@effect/platform/Command"
import {
  ProtocolError,
  SpawnRefused,
  SubstrateError,
  UsageError,
  type Worker,
  WorkerId,
  WorkerNotFound,
  WorkerResult
} from "@trail/domain"
import { TaskName } from "@trail/domain/ids"
import { Project } from "@trail/scheduler"
import { Live, Supervisor } from "@trail/supervisor"
import { Archive } from "@trail/store"
import { Workers } from "@trail/workers"
import { type Clock, Context, Deferred, Effect, Layer, Option, Schema, Stream } from "effect"
import { cwd, envVar, explicitRoot, foundCount, pretty, print, userKindsDir } from "./Common.js"
import { follow, followOption, limitOption, ndjson, sinceOption, subscribeIf, windowOf } from "./LogReading.js"
import { ExitCode } from "./Output.js"
import { bold, card, cyan, dim, green, red, safeText, table, termWidth, time, wrap, yellow } from "./Pretty.js"
import { sweepResults, topFindings } from "./Results.js"

/** The walk worker bundled next to the CLI (dist/walk-worker.cjs); absent when not bundled. */
const walkWorker = typeof __dirname === "string" ? `${__dirname}/walk-worker.cjs` : undefined

/** How a worker runs this very trail: the node binary and the script the CLI was started from. */
const trailCommand = (): ReadonlyArray<string> => [
  process.execPath,
  ...(process.argv[1] === undefined ? [] : [process.argv[1]])
]

/** The root, its configuration and how workers run trail. */
export const rootSettings = Effect.gen(function* () {
  const explicit = yield* explicitRoot
  const project = yield* Project.findRoot({ explicit, cwd: yield* cwd })
  const config = yield* Project.loadConfig(project)
  return { project, config, trailCommand: trailCommand(), userKindsDir: yield* userKindsDir, walkWorker }
})

/** The settings of the root a command runs on ({@link rootSettings}), provided with its layers. */
export class Root extends Context.Tag("@trail/cli/Root")<Root, Live.RootSettings>() {}

/** The root alone (commands that read its files and open no store: `kinds`). */
export const RootLive = Layer.effect(Root, rootSettings)

/**
 * The root found from `--root` / `$TRAIL_ROOT` / the cwd, and the layers `layerOf` builds on it.
 * Call sites pass `(settings) => Live.x(settings)`, not `Live.x`: the libraries are loaded on first
 * access (apps/cli/build.mjs), so naming `Live.x` when the command tree is built would load them
 * for every command.
 */
export const rootLayer = <ROut, E, RIn>(layerOf: (settings: Live.RootSettings) => Layer.Layer<ROut, E, RIn>) =>
  Layer.unwrapEffect(
    Effect.map(rootSettings, (settings) => Layer.merge(layerOf(settings), Layer.succeed(Root, settings)))
  )

/** Root + Workers + Database: each worker command gets them once, through `Command.provide`. */
const WorkersLive = rootLayer((settings) => Live.workersLayer(settings))

/** Root + the Supervisor and its services (`supervise`). */
const SupervisorLive = rootLayer((settings) => Live.supervisorLayer(settings))

/** Root + the live EventLog over the Database (`events`). */
const EventLogLive = rootLayer((settings) => Live.eventLogLayer(settings))

/** Runs `f` with the provided Workers service ({@link WorkersLive}). */
const withWorkers = <A, E, R>(f: (workers: Workers.WorkersShape) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(Workers.Workers, f)

const workerIdArg = Args.text({ name: "id" }).pipe(Args.withDescription("A worker id: w1, w2, …"))

const decodeId = (raw: string) =>
  Schema.decode(WorkerId)(raw).pipe(Effect.mapError(() => new WorkerNotFound({ id: raw })))

/** The calling worker's id, from `$TRAIL_WORKER_ID`. */
const self = Effect.gen(function* () {
  const fromEnv = yield* envVar("TRAIL_WORKER_ID")
  if (Option.isNone(fromEnv))
    return yield* new ProtocolError({
      reason: "no-worker-identity",
      detail:
        "this is a worker protocol command, and $TRAIL_WORKER_ID is not set: trail sets it in the environment of every worker it starts"
    })
  const raw = fromEnv.value
  return yield* Schema.decode(WorkerId)(raw).pipe(
    Effect.mapError(
      () =>
        new ProtocolError({
          reason: "no-worker-identity",
          detail: `$TRAIL_WORKER_ID is ${JSON.stringify(raw)}, not a worker id (w1, w2, …)`
        })
    )
  )
})

/**
 * {@link WorkersLive} for the worker protocol: the caller's identity is checked first, so a
 * protocol call outside a worker says so before anything about the root.
 */
const ProtocolLive = Layer.unwrapEffect(Effect.as(self, WorkersLive))

const stateColour = (state: string, text: string) => {
  switch (state) {
    case "ready":
      return green(text)
    case "needs_input":
      return yellow(text)
    case "failed":
    case "lost":
      return red(text)
    case "cancelled":
      return dim(text)
    default:
      return cyan(text)
  }
}

const short = (text: string, width: number) => {
  const line = text.replace(/\s+/g, " ").trim()
  return line.length > width ? `${line.slice(0, width - 1)}…` : line
}

const renderWorker = (worker: Worker) =>
  card(`${worker.id} · ${stateColour(worker.state, worker.state)} · ${worker.kind}`, [
    ["task", short(worker.text, 100)],
    ["folder", worker.path],
    ["question", worker.question],
    ["reason", worker.reason],
    ["outcome", worker.result?.outcome ?? null],
    ["summary", worker.result?.summary ?? null],
    ["found", worker.result?.found ?? null],
    ["todos", worker.todos.length === 0 ? null : worker.todos.join(" · ")],
    ["substrate", worker.substrate],
    ["worktree", worker.worktree],
    ["started", time(worker.created_at)],
    ["finished", time(worker.finished_at)]
  ])

/** A finished worker's evidence, recommendations and change set (diffstat), under its card. */
const renderResultLists = (worker: Worker, changeSet: Workers.WorkerDetail["changeSet"]) => {
  const width = termWidth()
  const list = (title: string, items: ReadonlyArray<string>) =>
    items.length === 0
      ? []
      : [
          "",
          bold(title),
          ...items.flatMap((item) => wrap(item, width - 4).map((l, i) => `${i === 0 ? "  - " : "    "}${l}`))
        ]
  return [
    ...list("evidence", worker.result?.evidence ?? []),
    ...list("recommendations", worker.result?.recommend ?? []),
    ...(changeSet === null
      ? []
      : [
          "",
          bold("change set"),
          `  ${changeSet.files} file(s) ${green(`+${changeSet.insertions}`)} ${red(`-${changeSet.deletions}`)}`,
          ...changeSet.paths.map((p) => `  ${p}`)
        ])
  ]
}

const renderWorkers = (workers: ReadonlyArray<Worker>) =>
  table(
    workers.map((w) => ({
      id: w.id,
      state: w.state,
      kind: w.kind,
      folder: w.path ?? "",
      task: short(w.text, 50),
      detail: short(w.question ?? w.reason ?? w.result?.outcome ?? "", 40),
      created_at: w.created_at
    })),
    [
      ["id", "ID"],
      ["state", "STATE"],
      ["kind", "KIND"],
      ["folder", "FOLDER"],
      ["task", "TASK"],
      ["detail", "DETAIL"],
      ["created_at", "STARTED"]
    ],
    (row, text) => stateColour(row.state, text)
  )

/** Runs `call` on worker `id` (decoded from the argument) and prints the worker it returns. */
const onWorker = <E>(
  rawId: string,
  prettyFlag: boolean,
  call: (workers: Workers.WorkersShape, id: WorkerId) => Effect.Effect<Worker, E>
) =>
  Effect.flatMap(decodeId(rawId), (id) => withWorkers((workers) => call(workers, id))).pipe(
    Effect.flatMap((worker) => print(worker, { pretty: prettyFlag, render: renderWorker }))
  )

/** A worker protocol call for the calling worker (`$TRAIL_WORKER_ID`); prints the worker. */
const asWorker = <E>(
  prettyFlag: boolean,
  call: (workers: Workers.WorkersShape, id: WorkerId) => Effect.Effect<Worker, E>
) => Effect.flatMap(self, (id) => onWorker(id, prettyFlag, call))

const words = (name: string, description: string) =>
  Args.text({ name }).pipe(Args.atLeast(1), Args.withDescription(description))

// ---------------------------------------------------------------------------------------------
// Human commands

const spawn = Command.make(
  "spawn",
  {
    kind: Options.text("as").pipe(Options.optional, Options.withDescription("The worker kind (default: default).")),
    path: Options.text("path").pipe(
      Options.optional,
      Options.withDescription("The folder the worker is about (set as $TRAIL_PATH).")
    ),
    text: words("text", "What the worker should do."),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const kind = Option.getOrUndefined(args.kind)
      const parent = yield* envVar("TRAIL_WORKER_ID")
      const parentId = Option.isSome(parent)
        ? yield* Effect.orElseSucceed(decodeId(parent.value), () => undefined)
        : undefined
      // Nothing is created for a kind that cannot start (its program missing, tmux missing).
      const worker = yield* withWorkers((workers) =>
        Effect.zipRight(
          workers.preflight(kind),
          workers.spawn({
            text: args.text.join(" "),
            kind,
            path: Option.getOrUndefined(args.path),
            parent: parentId
          })
        )
      )
      // A worker that could not even start is an error of this command (its id is in the message).
      if (worker.state === "failed")
        return yield* new SpawnRefused({ reason: `${worker.id} could not start: ${worker.reason ?? "unknown reason"}` })
      yield* print(worker, { pretty: args.pretty, render: renderWorker })
    })
).pipe(
  Command.provide(WorkersLive),
  Command.withDescription("Start a worker in its own tmux window (or process) with TEXT as its task.")
)

const workersList = Command.make("workers", { pretty }, (args) =>
  Effect.flatMap(
    withWorkers((workers) => workers.list),
    (list) => print(list, { pretty: args.pretty, render: renderWorkers })
  )
).pipe(Command.provide(WorkersLive), Command.withDescription("List every worker, newest first."))

const show = Command.make("show", { id: workerIdArg, pretty }, (args) =>
  Effect.gen(function* () {
    const id = yield* decodeId(args.id)
    const detail = yield* withWorkers((workers) => workers.show(id))
    yield* print(
      { ...detail.worker, events: detail.events, change_set: detail.changeSet, output: detail.output },
      {
        pretty: args.pretty,
        render: () =>
          [
            renderWorker(detail.worker),
            ...renderResultLists(detail.worker, detail.changeSet),
            "",
            bold("events"),
            ...detail.events.map((e) => `  ${dim(time(e.at))}  ${e.type}  ${short(JSON.stringify(e.data), 90)}`),
            "",
            bold("output"),
            detail.output.split("\n").slice(-20).join("\n")
          ].join("\n")
      }
    )
  })
).pipe(
  Command.provide(WorkersLive),
  Command.withDescription("Show one worker: its state, result, events and latest output.")
)

const tell = Command.make(
  "tell",
  { id: workerIdArg, text: words("text", "What to type into the worker."), pretty },
  (args) =>
    Effect.gen(function* () {
      const id = yield* decodeId(args.id)
      const worker = yield* withWorkers((workers) => workers.tell(id, args.text.join(" ")))
      yield* print(worker, { pretty: args.pretty, render: renderWorker })
    })
).pipe(
  Command.provide(WorkersLive),
  Command.withDescription("Type `[trail] TEXT` into the worker's pane literally (send-keys -l), then Enter.")
)

const attach = Command.make(
  "attach",
  {
    id: Args.text({ name: "id" }).pipe(Args.optional, Args.withDescription("A worker id (default: the whole session)."))
  },
  (args) =>
    Effect.gen(function* () {
      const id = Option.isSome(args.id) ? yield* decodeId(args.id.value) : null
      const command = yield* withWorkers((workers) => workers.attachCommand(id))
      if (command === null)
        return yield* new UsageError({
          message: 'workers run as plain processes (worker.substrate = "process"): there is nothing to attach to'
        })
      const [program, ...programArgs] = command
      if (program !== undefined && process.stdin.isTTY === true && process.stdout.isTTY === true) {
        // tmux takes over this terminal: its stdio is ours (a TTY), not pipes.
        const status = yield* PlatformCommand.make(program, ...programArgs).pipe(
          PlatformCommand.stdin("inherit"),
          PlatformCommand.stdout("inherit"),
          PlatformCommand.stderr("inherit"),
          PlatformCommand.exitCode,
          Effect.mapError(
            (error) =>
              new SubstrateError({
                substrate: "tmux",
                reason: error._tag === "SystemError" && error.reason === "NotFound" ? "missing" : "failed",
                detail: `${command.join(" ")}: ${error.message}`
              })
          )
        )
        // The one value on stdout either way; tmux's own message is already on the terminal.
        yield* print({ command, exit_status: status }, { pretty: false, render: () => "" })
        if (status !== 0)
          return yield* new SubstrateError({
            substrate: "tmux",
            reason: "failed",
            detail: `tmux exited with status ${status}: ${command.join(" ")}`
          })
        return
      }
      yield* print(
        {
          command,
          shell: command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ")
        },
        {
          pretty: false,
          render: () => ""
        }
      )
    })
).pipe(
  Command.provide(WorkersLive),
  Command.withDescription("Attach to the workers' tmux session (on a TTY), or print the command that does.")
)

const kill = Command.make("kill", { id: workerIdArg, pretty }, (args) =>
  Effect.gen(function* () {
    const id = yield* decodeId(args.id)
    const killed = yield* withWorkers((workers) => workers.kill(id))
    yield* print(killed, { pretty: args.pretty, render: renderWorkers })
  })
).pipe(
  Command.provide(WorkersLive),
  Command.withDescription(
    "Cancel a worker and its children, and close their windows; for a finished worker, close its window."
  )
)

/** `30`, `90s`, `20m`, `2h`, `7d` (a bare number is seconds) as milliseconds, or null when malformed. */
const parseAge = (text: string): number | null => {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim())
  if (match === null) return null
  const units: Record<string, number> = { "": 1, s: 1, m: 60, h: 3_600, d: 86_400 }
  const unit = units[match[2] ?? ""]
  return unit === undefined ? null : Number(match[1]) * unit * 1000
}

/**
 * `trail gc --workers [--older-than D] [--force]`: prunes finished workers' windows, directories
 * and worktrees (see `Workers.gc`); `--older-than` defaults to 0 (every finished worker).
 */
export const gcWorkers = (olderThan: Option.Option<string>, force: boolean) =>
  Effect.gen(function* () {
    const age = Option.isSome(olderThan) ? parseAge(olderThan.value) : 0
    if (age === null)
      return yield* new UsageError({
        message: `--older-than ${JSON.stringify(Option.getOrElse(olderThan, () => ""))}: expected seconds or a duration like 90s, 20m, 2h, 7d`
      })
    // `gc` provides the scheduler; only with --workers are the workers opened too.
    return yield* withWorkers((workers) => workers.gc({ olderThanMs: age, force })).pipe(Effect.provide(WorkersLive))
  })

const respawn = Command.make("respawn", { id: workerIdArg, pretty }, (args) =>
  onWorker(args.id, args.pretty, (workers, id) => workers.respawn(id))
).pipe(
  Command.provide(WorkersLive),
  Command.withDescription("Start a new worker with the kind, task and folder of a finished one.")
)

const changeSetCommand = (name: "promote" | "discard", description: string) =>
  Command.make(name, { id: workerIdArg, pretty }, (args) =>
    Effect.gen(function* () {
      const id = yield* decodeId(args.id)
      const stat = yield* withWorkers((workers) => workers[name](id))
      yield* print(
        { id, [name === "promote" ? "promoted" : "discarded"]: true, ...stat },
        {
          pretty: args.pretty,
          render: () =>
            card(`${id} ${name}d`, [
              ["files", stat.files],
              ["insertions", stat.insertions],
              ["deletions", stat.deletions],
              ["paths", stat.paths.join(", ")]
            ])
        }
      )
    })
  ).pipe(Command.provide(WorkersLive), Command.withDescription(description))

const promote = changeSetCommand(
  "promote",
  "Apply a finished worker's change set to the root's working tree, after a clean `git apply --check` (nothing is committed)."
)
const discard = changeSetCommand("discard", "Throw away a finished worker's change set and remove its worktree.")

const events = Command.make("events", { follow: followOption, since: sinceOption, limit: limitOption }, (args) =>
  Effect.gen(function* () {
    const archiveDir = Archive.dirOf((yield* Root).project.databaseFile)
    // Subscribed first so nothing appended between the window and the live feed is lost.
    const subscription = yield* subscribeIf(args.follow)
    const window = yield* windowOf(archiveDir, args)
    yield* Stream.runForEach(Archive.events(archiveDir, window.after, window.upTo), (batch) =>
      Effect.sync(() => void process.stdout.write(batch.map(ndjson).join("")))
    )
    if (Option.isSome(subscription)) yield* follow(subscription.value, window.upTo, ndjson)
  }).pipe(Effect.scoped)
).pipe(
  Command.provide(EventLogLive),
  Command.withDescription(
    "Print the event log as NDJSON (one event per line), archived events included: --since ID|DATE, --limit N (the newest N), --follow."
  )
)

// ---------------------------------------------------------------------------------------------
// The worker protocol

const todos = Command.make(
  "todos",
  {
    items: Args.text({ name: "item" }).pipe(
      Args.repeated,
      Args.withDescription("A todo (repeatable; none clears the list).")
    ),
    pretty
  },
  (args) => asWorker(args.pretty, (workers, id) => workers.todos(id, args.items))
).pipe(Command.provide(ProtocolLive), Command.withDescription("(worker) Replace your todo list with ITEM…"))

const note = Command.make("note", { text: words("text", "The note."), pretty }, (args) =>
  asWorker(args.pretty, (workers, id) => workers.note(id, args.text.join(" ")))
).pipe(Command.provide(ProtocolLive), Command.withDescription("(worker) Add a progress note to the log."))

const wait = Command.make(
  "wait",
  { question: Options.text("question").pipe(Options.withDescription("What you need the human to decide.")), pretty },
  (args) =>
    Effect.zipRight(
      args.question.trim() === ""
        ? Effect.fail(new UsageError({ message: "--question must not be empty" }))
        : Effect.void,
      asWorker(args.pretty, (workers, id) => workers.wait(id, args.question))
    )
).pipe(
  Command.provide(ProtocolLive),
  Command.withDescription("(worker) Pause for the human: you become needs_input; the answer is typed into your input.")
)

const done = Command.make(
  "done",
  {
    outcome: Options.text("outcome").pipe(Options.withDescription("One line: what came out of it.")),
    summary: Options.text("summary").pipe(Options.withDescription("A few sentences for the human.")),
    evidence: Options.text("evidence").pipe(
      Options.repeated,
      Options.withDescription("Paths, line numbers, command output (repeatable; required).")
    ),
    recommend: Options.text("recommend").pipe(
      Options.repeated,
      Options.withDescription("A recommendation (repeatable).")
    ),
    found: Options.integer("found").pipe(
      Options.withSchema(foundCount),
      Options.optional,
      Options.withDescription("Findings in your folder (fleet mode): raises its priority in later sweeps.")
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const found = Option.getOrNull(args.found)
      const result = new WorkerResult({
        outcome: args.outcome,
        summary: args.summary,
        evidence: args.evidence,
        recommend: args.recommend,
        found
      })
      yield* asWorker(args.pretty, (workers, id) => workers.done(id, result))
    })
).pipe(
  Command.provide(ProtocolLive),
  Command.withDescription("(worker) Finish with a result; evidence is required (else call wait).")
)

const fail = Command.make(
  "fail",
  { reason: Options.text("reason").pipe(Options.withDescription("Why you cannot go on.")), pretty },
  (args) => asWorker(args.pretty, (workers, id) => workers.fail(id, args.reason))
).pipe(
  Command.provide(ProtocolLive),
  Command.withDescription("(worker) Give up: you cannot go on and have nothing useful to hand over.")
)

const worker = Command.make("worker").pipe(
  Command.withDescription("One worker: `show ID` for people; todos, note, wait, done, fail for the worker itself."),
  Command.withSubcommands([show, todos, note, wait, done, fail])
)

// ---------------------------------------------------------------------------------------------
// supervise

/**
 * Progress on stderr: one line per event; on a terminal also a live line per fleet slot, redrawn
 * below the log (ANSI: cursor up, erase line). Folder names and messages in them are shown
 * through `safeText`, so a folder named with escape sequences cannot drive the terminal.
 */
const liveProgress = (slots: number, clock: Clock.Clock) => {
  const stamp = () => new Date(clock.unsafeCurrentTimeMillis()).toISOString().slice(11, 19)
  const live = process.stderr.isTTY === true && slots > 0
  const lines: Array<string> = Array.from({ length: slots }, () => "starting")
  let drawn = 0
  const erase = () => (drawn > 0 ? `\u001b[${drawn}A\u001b[0J` : "")
  const draw = () => lines.map((line, i) => `${dim(`slot ${i + 1}`)}  ${line}\n`).join("")
  return {
    report: (line: string) => {
      const text = `[trail ${stamp()}] ${safeText(line)}\n`
      if (!live) return void process.stderr.write(text)
      process.stderr.write(erase() + text + draw())
      drawn = lines.length
    },
    onSlot: (index: number, status: string) => {
      if (!live) return
      lines[index] = safeText(status)
      process.stderr.write(erase() + draw())
      drawn = lines.length
    }
  }
}

/**
 * What a fleet's sweep found, for its closing summary: the sweep and its top findings (by found,
 * then path; see Results.ts). Never fails the run: a summary that cannot be read is left out.
 */
const fleetFindings = (task: TaskName) =>
  sweepResults(task).pipe(
    Effect.map((r) => ({ task, sweep: r.sweep, top_findings: topFindings(r.results) })),
    Effect.orElseSucceed(() => ({ task, sweep: null, top_findings: [] }))
  )

/** The fleet's closing table: done / skipped / failed, then the top findings with path and summary. */
const renderFleetSummary = (
  s: Supervisor.SupervisorSummary,
  findings: Effect.Effect.Success<ReturnType<typeof fleetFindings>>,
  width: number
) => {
  const state = s.stopped_by_signal ? yellow("stopped") : s.sweep_complete === true ? green("complete") : yellow("open")
  const rows = findings.top_findings.map((f) => ({
    found: f.found,
    path: f.path,
    worker: f.worker,
    summary: f.summary ?? ""
  }))
  const fixed =
    Math.max(5, ...rows.map((r) => String(r.found).length)) +
    Math.max(4, ...rows.map((r) => r.path.length)) +
    Math.max(6, ...rows.map((r) => (r.worker ?? "—").length)) +
    8
  const summaryWidth = Math.max(20, width - fixed)
  return [
    bold(`fleet · sweep ${findings.sweep ?? "—"} ${state}`),
    `  ${green(`${s.folders_done} done`)} · ${dim(`${s.folders_skipped} skipped`)} · ${s.failed > 0 ? red(`${s.failed} failed`) : `${s.failed} failed`} · ${s.spawned} worker(s) started`,
    "",
    rows.length === 0
      ? `  ${dim("no findings reported")}`
      : table(
          rows.map((r) => ({
            ...r,
            summary: r.summary.length > summaryWidth ? `${r.summary.slice(0, summaryWidth - 1)}…` : r.summary
          })),
          [
            ["found", "FOUND"],
            ["path", "PATH"],
            ["worker", "WORKER"],
            ["summary", "SUMMARY"]
          ]
        ),
    "",
    dim(`every result: trail results --task ${findings.task} --pretty`)
  ].join("\n")
}

/** How many workers a fleet runs at once without `--workers` (fewer when worker.max_active is lower). */
const DEFAULT_FLEET_WORKERS = 3

const supervise = Command.make(
  "supervise",
  {
    task: Options.text("task").pipe(
      Options.withSchema(TaskName),
      Options.optional,
      Options.withDescription("Fleet mode: drain this task's sweep.")
    ),
    workers: Options.integer("workers").pipe(
      Options.optional,
      Options.withDescription(
        "Fleet mode: how many workers run at once (default: 3, or worker.max_active when lower; at most worker.max_active)."
      )
    ),
    kind: Options.text("as").pipe(
      Options.optional,
      Options.withDescription("Fleet mode: the workers' kind (default: default).")
    ),
    prompt: Options.text("prompt").pipe(
      Options.optional,
      Options.withDescription("Fleet mode: each worker's task; {path} becomes its folder.")
    ),
    autoSweep: Options.boolean("auto-sweep").pipe(
      Options.withDescription("Fleet mode: open the next sweep when one completes, and go on.")
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const settings = yield* Root
      if (Option.isSome(args.task) !== Option.isSome(args.prompt))
        return yield* new UsageError({ message: "fleet mode needs both --task and --prompt" })
      const maxActive = settings.config.worker.max_active
      // The default fits any worker.max_active; only a --workers the user gave can exceed it.
      const workers = Option.getOrElse(args.workers, () => Math.min(DEFAULT_FLEET_WORKERS, maxActive))
      if (Option.isSome(args.task) && (workers < 1 || workers > maxActive))
        return yield* new UsageError({ message: `--workers must be between 1 and worker.max_active (${maxActive})` })
      const stop = yield* Supervisor.makeStopSignals
      // Our own signal handling replaces the runtime's: the first signal drains, the second cancels.
      let signals = 0
      const onSignal = () => {
        signals++
        if (signals === 1) {
          process.stderr.write(
            "[trail] stopping: no new folders; waiting for running workers (signal again to cancel them)\n"
          )
          Deferred.unsafeDone(stop.drain, Effect.void)
        } else Deferred.unsafeDone(stop.cancel, Effect.void)
      }
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        process.removeAllListeners(signal)
        process.on(signal, onSignal)
      }
      const progress = liveProgress(Option.isSome(args.task) ? workers : 0, yield* Effect.clock)
      const fleet =
        Option.isSome(args.task) && Option.isSome(args.prompt)
          ? {
              task: args.task.value,
              workers,
              kind: Option.getOrUndefined(args.kind),
              prompt: args.prompt.value,
              autoSweep: args.autoSweep
            }
          : undefined
      const summary = yield* Supervisor.run({
        fleet,
        config: settings.config,
        stop,
        report: progress.report,
        onSlot: progress.onSlot
      })
      if (summary.halted !== null) {
        // The summary on stdout, the cause as the error on stderr, exit 1.
        yield* print(summary, { pretty: false, exit: ExitCode.ok, render: () => "" })
        return yield* new SpawnRefused({ reason: `the fleet stopped: ${summary.halted}` })
      }
      // Fleet mode ends with what the sweep found: as fields of the JSON, and for a person on a terminal.
      const findings = fleet === undefined ? null : yield* fleetFindings(fleet.task)
      const result = findings === null ? summary : { ...summary, ...findings }
      if (findings !== null && process.stderr.isTTY === true && !args.pretty)
        process.stderr.write(`${renderFleetSummary(summary, findings, termWidth(process.stderr))}\n`)
      yield* print(result, {
        pretty: args.pretty,
        exit: summary.stopped_by_signal ? ExitCode.interrupted : ExitCode.ok,
        render: (s) =>
          findings === null
            ? card("supervise", [
                ["sweep complete", s.sweep_complete],
                ["workers spawned", s.spawned],
                ["ready", s.ready],
                ["failed", s.failed],
                ["folders done", s.folders_done],
                ["folders skipped", s.folders_skipped],
                ["start failures", s.start_failures],
                ["stopped by signal", s.stopped_by_signal]
              ])
            : renderFleetSummary(summary, findings, termWidth())
      })
    })
).pipe(
  Command.provide(SupervisorLive),
  Command.withDescription(
    "Supervise the root's workers (leases, deaths, timeouts); with --task/--prompt, drain a sweep with a fleet of workers."
  )
)

export const workerCommands = [
  spawn,
  workersList,
  worker,
  tell,
  attach,
  kill,
  respawn,
  promote,
  discard,
  events,
  supervise
] as const
