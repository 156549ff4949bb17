/**
 * The worker lifecycle (SPEC §2). Every change of a worker is one transaction that checks the
 * transition against `WorkerMachine` (the one place it is enforced), updates the `workers` row
 * and appends the event that records it. Times come from Effect's `Clock` (ms since epoch).
 *
 * A worker's files live in `.trail/workers/<id>/`: `task.md` (universal guardrails + kind body +
 * task), `exit` (written by the substrate's wrapper when the program ends), `output.log` (plain
 * processes). Kinds with `worktree: true` work in `.trail/worktrees/<id>` (a detached worktree)
 * and leave a change set that `promote` applies after a clean `git apply --check`.
 *
 * Errors: WorkerNotFound, WorkerFinished (acting on a finished worker), UnknownKind, KindUntrusted,
 * SpawnRefused (caps), ProtocolError (done without evidence), SubstrateError, ChangeSetError,
 * InvalidTransition, StoreError.
 */
import { accessSync, constants, statSync } from "node:fs"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import {
  ChangeSetError,
  canTransition,
  Env,
  emptyInbox,
  foldEvents,
  InvalidTransition,
  isLiveWorkerState,
  ProtocolError,
  SpawnRefused,
  type StoreError,
  SubstrateError,
  SubstrateName,
  type TrailConfig,
  type TrailEvent,
  UnknownKind,
  KindUntrusted,
  permissionOf,
  type Worker,
  WorkerFinished,
  WorkerId,
  WorkerMachine,
  WorkerNotFound,
  type WorkerResult,
  type WorkerState,
  workerStateEvent
} from "@trail/domain"
import { Database as Db, Migrations } from "@trail/store"
import { Clock, Context, Duration, Effect, Either, Layer, Option } from "effect"
import * as ChangeSets from "./ChangeSets.js"
import * as Kinds from "./Kinds.js"
import { Processes } from "./Processes.js"
import { endingLines, inheritedEnv, Substrates, tmuxInstalled, type WorkerRef } from "./Substrate.js"
import { denyThenType } from "./Permission.js"
import { composeTaskFile } from "./TaskFile.js"
import { WorkerStore } from "./WorkerStore.js"

/** What the Workers service needs to know about the root it serves. */
export interface WorkerSettings {
  readonly root: string
  readonly stateDir: string
  readonly config: TrailConfig
  /** How a worker runs trail itself (e.g. `[node, …/bin/trail.cjs]`); a `trail` shim on its PATH calls it. */
  readonly trailCommand: ReadonlyArray<string>
  /** `~/.config/trail/kinds` (user kinds). */
  readonly userKindsDir: string
  /** The root's `.trail.toml`: `trail kinds trust` records the trust of its `worker.command` under this path. */
  readonly configFile: string
}

export class WorkerSettingsTag extends Context.Tag("@trail/workers/WorkerSettings")<
  WorkerSettingsTag,
  WorkerSettings
>() {}

export interface SpawnRequest {
  readonly text: string
  readonly kind?: string | undefined
  /** Fleet mode: the coverage task and the folder handed to the worker. */
  readonly task?: string | undefined
  readonly path?: string | undefined
  /** The worker spawning this one (a child), e.g. from `$TRAIL_WORKER_ID`. */
  readonly parent?: WorkerId | undefined
  readonly respawnOf?: WorkerId | undefined
}

/** `trail worker show`: the worker, its events and what its terminal shows. */
export interface WorkerDetail {
  readonly worker: Worker
  readonly events: ReadonlyArray<TrailEvent>
  readonly output: string
  readonly changeSet: ChangeSets.DiffStat | null
}

export interface WorkersShape {
  readonly spawn: (
    request: SpawnRequest
  ) => Effect.Effect<Worker, UnknownKind | KindUntrusted | SpawnRefused | WorkerNotFound | WorkersError>
  readonly get: (id: WorkerId) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  /** Every worker, newest first, after recording the deaths of programs that ended unnoticed. */
  readonly list: Effect.Effect<ReadonlyArray<Worker>, WorkersError>
  /** Live workers (spawning, running, needs_input), oldest first. */
  readonly live: Effect.Effect<ReadonlyArray<Worker>, WorkersError>
  readonly show: (id: WorkerId) => Effect.Effect<WorkerDetail, WorkerNotFound | WorkersError>
  // The worker protocol.
  readonly todos: (id: WorkerId, todos: ReadonlyArray<string>) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  readonly note: (id: WorkerId, text: string) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  readonly wait: (id: WorkerId, question: string) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  readonly done: (id: WorkerId, result: WorkerResult) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  readonly fail: (id: WorkerId, reason: string) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  // Human commands.
  /**
   * Types `[trail] TEXT` (or, with `prefix: false`, exactly TEXT) into the worker's pane, then
   * Enter. While the worker waits on a permission dialog (its hooks raised a `permission` item),
   * Escape first: the tool is rejected and the text is the next message, never an approval.
   */
  readonly tell: (
    id: WorkerId,
    text: string,
    options?: { readonly prefix?: boolean }
  ) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  /**
   * Presses `keys` (tmux key names, e.g. a permission dialog's) in the live worker's own window
   * (checked by its `@trail_worker` tag); SubstrateError `gone` when the window is not its own.
   */
  readonly pressKeys: (
    id: WorkerId,
    keys: ReadonlyArray<string>
  ) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  /** Cancels the worker and its live descendants (children first) and closes their windows. */
  readonly kill: (id: WorkerId, reason?: string) => Effect.Effect<ReadonlyArray<Worker>, WorkerNotFound | WorkersError>
  /** Starts a new worker with the same kind, text and folder as a finished one. */
  readonly respawn: (
    id: WorkerId
  ) => Effect.Effect<Worker, WorkerNotFound | UnknownKind | KindUntrusted | SpawnRefused | WorkersError>
  readonly promote: (id: WorkerId) => Effect.Effect<ChangeSets.DiffStat, WorkerNotFound | WorkersError>
  readonly discard: (id: WorkerId) => Effect.Effect<ChangeSets.DiffStat, WorkerNotFound | WorkersError>
  readonly attachCommand: (
    id: WorkerId | null
  ) => Effect.Effect<ReadonlyArray<string> | null, WorkerNotFound | WorkersError>
  // Supervision.
  /**
   * Records that the worker's program ended with `status`: a live worker that never called
   * done/fail becomes `failed` (status 127: command not found) or `lost`. Idempotent.
   */
  readonly recordExit: (id: WorkerId, status: number | null) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  /** A live worker becomes failed/lost/cancelled for `reason` (the supervisor's verdicts). */
  readonly end: (
    id: WorkerId,
    state: "failed" | "lost" | "cancelled",
    reason: string
  ) => Effect.Effect<Worker, WorkerNotFound | WorkersError>
  /** Takes or renews the worker's lease for `owner` until now + `ttlMs`; false when the worker is finished. */
  readonly renewLease: (id: WorkerId, owner: string, ttlMs: number) => Effect.Effect<boolean, WorkersError>
  /**
   * {@link renewLease} for many workers in one transaction (a savepoint of the caller's, when it
   * runs inside one): the ids whose lease now runs until now + `ttlMs` (finished or unknown ones are left out).
   */
  readonly renewLeases: (
    ids: ReadonlyArray<WorkerId>,
    owner: string,
    ttlMs: number
  ) => Effect.Effect<ReadonlySet<WorkerId>, WorkersError>
  /** Ends a finished worker's program after the exit grace (its window stays, dead). */
  readonly stopProgram: (worker: Worker, graceMs: number) => Effect.Effect<void>
  /** Closes the worker's window / ends its process. */
  readonly close: (worker: Worker) => Effect.Effect<void>
  /** `.trail/workers/<id>`. */
  readonly dirOf: (id: WorkerId) => string
  /**
   * Checks, before anything is claimed or created, that `kind` (default `default`) exists, its
   * program resolves on the workers' PATH, and the substrate can start (tmux installed when used).
   * Fails with UnknownKind, SpawnRefused (program not found, naming kind and command) or a
   * `missing` SubstrateError.
   */
  readonly preflight: (
    kind?: string
  ) => Effect.Effect<CommandCheck, UnknownKind | KindUntrusted | SpawnRefused | SubstrateError>
  /** What `trail doctor` reports about the kinds: see {@link KindsCheck}. */
  readonly checkCommands: Effect.Effect<KindsCheck>
  /**
   * The ids of `workers` whose window exists and is their own (tmux), every plain process: one
   * question per substrate for all of them (`Substrate.present`).
   */
  readonly present: (workers: ReadonlyArray<Worker>) => Effect.Effect<ReadonlySet<WorkerId>>
  /** Closes a finished worker's window (its program stopped) and forgets the window; live workers are left alone. */
  readonly closeWindow: (worker: Worker) => Effect.Effect<void, WorkersError>
  /** Finished workers whose window is still open and that finished at or before `finishedBefore` (ms). */
  readonly openWindows: (finishedBefore: number) => Effect.Effect<ReadonlyArray<Worker>, WorkersError>
  /**
   * Prunes workers finished at least `olderThanMs` ago: windows, `.trail/workers/<id>/` and
   * worktrees; a worktree with an unpromoted change set is kept unless `force`.
   */
  readonly gc: (options: {
    readonly olderThanMs: number
    readonly force: boolean
  }) => Effect.Effect<WorkersGc, WorkersError>
}

/**
 * Whether a kind's agent program can start: `program` is what is looked up on the workers' PATH
 * (`.trail/bin`, then the kind's `env.PATH` or the spawner's); null when the command is a shell
 * string that does not start with a plain program name (then it is not checked).
 */
export interface CommandCheck {
  readonly kind: string
  /** `builtin` or the kind file's path. */
  readonly source: string
  /** The argv template (a shell string as `sh -c STRING`). */
  readonly command: ReadonlyArray<string>
  readonly program: string | null
  /** The kind's own trust ({@link Kinds.KindTrust}). */
  readonly trust: Kinds.KindTrust
  /** It may run (it and the `worker.command` it runs are trusted) and its program is on PATH. */
  readonly ok: boolean
  readonly detail: string
}

/**
 * The kinds as `trail doctor` sees them: a {@link CommandCheck} per kind name (the kind that name
 * runs), the `worker.command` of `.trail.toml` with its trust, and the kind files that did not load.
 */
export interface KindsCheck {
  readonly kinds: ReadonlyArray<CommandCheck>
  readonly command: Kinds.ProjectCommand
  readonly problems: ReadonlyArray<Kinds.KindProblem>
}

/** `trail gc --workers`: what was pruned, and the workers kept because their change set is unpromoted. */
export interface WorkersGc {
  readonly windows_closed: number
  readonly dirs_removed: number
  readonly worktrees_removed: number
  readonly kept: ReadonlyArray<{ readonly id: WorkerId; readonly reason: string }>
}

/** The errors most worker operations share. */
export type WorkersError =
  StoreError | SubstrateError | WorkerFinished | InvalidTransition | ProtocolError | ChangeSetError

export class Workers extends Context.Tag("@trail/workers/Workers")<Workers, WorkersShape>() {}

/** Fields a transition may set besides `state`. */
interface TransitionFields {
  readonly question?: string | null
  readonly reason?: string | null
  readonly result?: WorkerResult
  readonly pid?: number
  readonly window?: string | null
}

/** Where `program` resolves (a path, or the first executable of that name on `path`), or null. */
export const resolveCommand = (program: string, path: string): string | null => {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK)
      return statSync(file).isFile()
    } catch {
      return false
    }
  }
  if (program.includes("/")) return executable(program) ? program : null
  for (const dir of path.split(":")) if (dir !== "" && executable(`${dir}/${program}`)) return `${dir}/${program}`
  return null
}

/** Shell words that are not programs on PATH: a shell string starting with one is not checked. */
const SHELL_WORDS = new Set(
  "exec cd export set unset eval trap read test [ . : source if then else for while until case do done { ( ! time command builtin alias ulimit umask wait shift true false echo printf local return exit type".split(
    " "
  )
)

/** The program a command template starts, or null when a shell string does not start with a plain word. */
const programOf = (template: ReadonlyArray<string>): string | null => {
  if (template.length === 3 && template[0] === "sh" && template[1] === "-c") {
    const word = /^\s*([A-Za-z0-9_.\/+-]+)(?=\s|$)/.exec(template[2] ?? "")?.[1]
    return word === undefined || SHELL_WORDS.has(word) ? null : word
  }
  return template[0] ?? null
}

/** The shell-quoted form of an argv (for the `trail` shim). */
const shellQuote = (argv: ReadonlyArray<string>) => argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ")

const MAX_TEXT = 65_536

export const make = Effect.gen(function* () {
  const database = yield* Db.Database
  const store = yield* WorkerStore
  const substrates = yield* Substrates
  const processes = yield* Processes
  const env = yield* Env
  const settings = yield* WorkerSettingsTag
  const context = yield* Effect.context<FileSystem.FileSystem | Path.Path | CommandExecutor.CommandExecutor>()
  const { config } = settings
  const workersDir = `${settings.stateDir}/workers`
  const dirOf = (id: WorkerId) => `${workersDir}/${id}`
  /** The identity stored on a worker's tmux window: two roots may share a server and both have a w1. */
  const tagOf = (id: WorkerId) => `${id} ${settings.root}`
  const binDir = `${settings.stateDir}/bin`

  const withPlatform = <A, E>(
    effect: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path | CommandExecutor.CommandExecutor>
  ) => Effect.provide(effect, context)

  const now = Clock.currentTimeMillis

  /** The worker, or WorkerNotFound (inside or outside a transaction). */
  const found = (id: WorkerId) =>
    Effect.flatMap(
      store.get(id),
      Option.match({ onNone: () => Effect.fail(new WorkerNotFound({ id })), onSome: Effect.succeed })
    )

  /** The worker this transaction has just written: its absence is a store fault (rolled back). */
  const written = (id: WorkerId) =>
    Effect.flatMap(
      store.get(id),
      Option.match({
        onNone: () => Effect.dieMessage(`worker ${id} vanished inside its own transaction`),
        onSome: Effect.succeed
      })
    )

  const get = (id: WorkerId) => Db.autocommit(found(id))

  /**
   * Moves `id` to `to` (checked against the machine), sets `fields`, appends the event.
   * Returns the updated worker.
   */
  const transition = (
    id: WorkerId,
    to: WorkerState,
    fields: TransitionFields,
    data: Record<string, unknown>,
    action: string
  ) =>
    Effect.gen(function* () {
      const at = yield* now
      const worker = yield* found(id)
      if (!canTransition(WorkerMachine, worker.state, to)) {
        return yield* isLiveWorkerState(worker.state)
          ? new InvalidTransition({ machine: "worker", from: worker.state, to })
          : new WorkerFinished({ id, state: worker.state, action })
      }
      yield* store.setState({
        id,
        state: to,
        at,
        finished_at: isLiveWorkerState(to) ? null : at,
        question: to === "needs_input" ? (fields.question ?? null) : null,
        reason: fields.reason ?? null,
        result: fields.result ?? null,
        pid: fields.pid ?? null,
        window: fields.window ?? null
      })
      yield* store.appendEvent({
        at,
        type: workerStateEvent(to),
        subject: { type: "worker", id },
        data: { from: worker.state, ...data }
      })
      return yield* written(id)
    }).pipe(database.transaction)

  /** Appends an event about a worker that does not change its state (it must exist). */
  const record = (
    id: WorkerId,
    type: string,
    data: Record<string, unknown>,
    update: (at: number) => Effect.Effect<void, Db.SqlFailure> = () => Effect.void
  ) =>
    Effect.gen(function* () {
      const at = yield* now
      yield* found(id)
      yield* update(at)
      yield* store.appendEvent({ at, type, subject: { type: "worker", id }, data })
      return yield* written(id)
    }).pipe(database.transaction)

  const requireLive = (worker: Worker, action: string) =>
    isLiveWorkerState(worker.state)
      ? Effect.succeed(worker)
      : Effect.fail(new WorkerFinished({ id: worker.id, state: worker.state, action }))

  const loadKinds = Kinds.loadKinds({
    userDir: settings.userKindsDir,
    projectDir: `${settings.stateDir}/kinds`,
    command: { file: settings.configFile, template: config.worker.command }
  })

  /**
   * `.trail/bin/trail`, the `trail` on a worker's PATH. Written once per content, through a
   * temporary file and a rename: rewriting it in place while a worker executes it fails that
   * worker with ETXTBSY ("Text file busy", exit 126).
   */
  const shimLock = yield* Effect.makeSemaphore(1)
  const writeShim = Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const file = `${binDir}/trail`
    const content = `#!/bin/sh\nexec ${shellQuote(settings.trailCommand)} "$@"\n`
    const current = yield* fs.readFileString(file).pipe(Effect.orElseSucceed(() => null))
    if (current === content) return
    yield* fs.makeDirectory(binDir, { recursive: true })
    // Other processes write their own temporary file; this one's spawns take turns (shimLock).
    const tmp = `${file}.${process.pid}.tmp`
    yield* fs.writeFileString(tmp, content, { mode: 0o755 })
    yield* fs.rename(tmp, file)
  }).pipe(shimLock.withPermits(1))

  /** The kind's argv template: its own command, else `worker.command` (a shell string runs as `sh -c`). */
  const templateOf = (kind: Kinds.Kind): ReadonlyArray<string> =>
    Option.getOrElse(kind.command, () => Kinds.argvOf(config.worker.command))

  /** The PATH a worker of `kind` runs with: trail's shim first, then the kind's or the spawner's PATH. */
  const workerPath = (kind: Kinds.Kind) =>
    `${binDir}:${kind.env["PATH"] ?? Option.getOrElse(env.get("PATH"), () => "")}`

  const checkKind = (kind: Kinds.Kind, trust: Kinds.KindTrust): CommandCheck => {
    const command = templateOf(kind)
    const program = programOf(command)
    const checked = { kind: kind.name, source: kind.source, command, program, trust }
    if (program === null)
      return { ...checked, ok: true, detail: "a shell string that does not start with a program name: not checked" }
    // `trail` is the shim trail writes into .trail/bin when the first worker starts.
    const found = program === "trail" ? `${binDir}/trail` : resolveCommand(program, workerPath(kind))
    return {
      ...checked,
      ok: found !== null,
      detail:
        found === null
          ? `${program} is not on the workers' PATH (command: ${command.join(" ")})`
          : `${program} → ${found}`
    }
  }

  /** Why `entry` may not run (its own trust, then that of the `worker.command` it runs), or null. */
  const untrusted = (entry: Kinds.LoadedKind, command: Kinds.ProjectCommand): KindUntrusted | null => {
    // A cloned repository's kinds and .trail.toml run only once a person reviewed and trusted them.
    if (!Kinds.isRunnable(entry.trust))
      return new KindUntrusted({
        name: entry.kind.name,
        file: entry.kind.source,
        hash: entry.kind.hash,
        changed: entry.trust === "changed",
        overrides: entry.overrides
      })
    if (Option.isNone(entry.kind.command) && !Kinds.isRunnable(command.trust))
      return new KindUntrusted({
        name: entry.kind.name,
        file: command.source,
        hash: command.hash,
        changed: command.trust === "changed",
        overrides: false,
        setting: "worker.command"
      })
    return null
  }

  /**
   * The kind `kindName` names, if it may run: UnknownKind (saying why a file of that name did not
   * load), or KindUntrusted for a project kind (or the `worker.command` of `.trail.toml` it runs)
   * that `trail kinds trust` never recorded as it is now.
   */
  const runnableKind = (kindName: string) =>
    Effect.gen(function* () {
      const { entries, kinds, problems, command } = yield* withPlatform(loadKinds)
      const entry = entries.get(kindName)
      if (entry === undefined) {
        const problem = problems.find((p) => p.file.endsWith(`/${kindName}.md`))
        return yield* new UnknownKind({
          name: kindName,
          known: [...kinds.keys()].sort(),
          ...(problem === undefined
            ? {}
            : { problem: `${problem.file}: ${problem.field === "" ? "" : `${problem.field}: `}${problem.message}` })
        })
      }
      const refused = untrusted(entry, command)
      if (refused !== null) return yield* refused
      return { kind: entry.kind, trust: entry.trust, kinds }
    })

  const preflight = (kindName = "default") =>
    Effect.gen(function* () {
      const { kind, trust } = yield* runnableKind(kindName)
      const check = checkKind(kind, trust)
      if (!check.ok)
        return yield* new SpawnRefused({
          reason: `kind ${kind.name} (${kind.source}) runs \`${check.command.join(" ")}\`, and ${check.program} is not on the workers' PATH; install it, set worker.command in .trail.toml, or choose another kind with --as`
        })
      if ((yield* substrates.preferred) === "tmux" && !(yield* tmuxInstalled()))
        return yield* new SubstrateError({
          substrate: "tmux",
          reason: "missing",
          detail: 'tmux is not installed (install it, or set worker.substrate = "process")'
        })
      return check
    })

  const spawn = (request: SpawnRequest) =>
    Effect.gen(function* () {
      const { kind, kinds } = yield* runnableKind(request.kind ?? "default")
      const text = request.text.slice(0, MAX_TEXT)
      const at = yield* now
      const substrate: SubstrateName = yield* substrates.preferred
      const maxDurationMs = Option.match(kind.maxDuration, {
        onNone: () => null,
        onSome: (d) => Math.round(Duration.toMillis(d))
      })

      /** What the `worker.spawned` event records (and the row starts from). */
      const spawned = {
        kind: kind.name,
        text,
        task: request.task ?? null,
        path: request.path ?? null,
        parent: request.parent ?? null,
        substrate,
        respawn_of: request.respawnOf ?? null
      }
      // Caps and the id are decided in the transaction that creates the worker.
      const created = yield* Effect.gen(function* () {
        const live = yield* store.liveCount
        if (live >= config.worker.max_active)
          return yield* new SpawnRefused({
            reason: `${live} workers are live and worker.max_active is ${config.worker.max_active}`
          })
        let depth = 0
        if (request.parent !== undefined) {
          const parent = Option.getOrUndefined(yield* store.get(request.parent))
          if (parent === undefined)
            return yield* new SpawnRefused({ reason: `parent worker ${request.parent} does not exist` })
          const parentKind = kinds.get(parent.kind)
          if (parentKind !== undefined && !parentKind.canSpawn)
            return yield* new SpawnRefused({
              reason: `kind ${parent.kind} of ${parent.id} cannot spawn workers (can_spawn: false)`
            })
          depth = parent.depth + 1
          if (depth > config.worker.max_spawn_depth)
            return yield* new SpawnRefused({
              reason: `depth ${depth} exceeds worker.max_spawn_depth ${config.worker.max_spawn_depth}`
            })
        }
        const seq = yield* store.nextSeq
        const id = WorkerId.make(`w${seq}`)
        yield* store.insert({ ...spawned, id, seq, depth, cwd: settings.root, max_duration_ms: maxDurationMs, at })
        yield* store.appendEvent({
          at,
          type: "worker.spawned",
          subject: { type: "worker", id },
          data: { ...spawned, depth }
        })
        return yield* written(id)
      }).pipe(database.transaction)

      const id = created.id
      const dir = dirOf(id)
      const fail = (reason: string) => transition(id, "failed", { reason }, { reason }, "fail")

      const prepared = yield* withPlatform(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          yield* fs.makeDirectory(dir, { recursive: true })
          yield* writeShim
          const taskFile = `${dir}/task.md`
          yield* fs.writeFileString(
            taskFile,
            composeTaskFile({ kind, workerId: id, task: text, folder: request.path ?? undefined })
          )
          return taskFile
        })
      ).pipe(
        Effect.mapError((error) => `cannot write ${dir}: ${error.message}`),
        Effect.either
      )
      if (Either.isLeft(prepared)) return yield* fail(prepared.left)
      const taskFile = prepared.right

      let cwd = settings.root
      if (kind.worktree) {
        const worktree = yield* withPlatform(ChangeSets.createWorktree(settings.root, id)).pipe(Effect.either)
        if (Either.isLeft(worktree)) return yield* fail(`cannot create its worktree: ${worktree.left.detail}`)
        cwd = worktree.right.path
        yield* database.transaction(store.setWorktree(id, cwd, worktree.right.base))
      }

      const template = templateOf(kind)
      const argv = Kinds.substitute(template, { task_file: taskFile, prompt: text, worker: id, root: settings.root })
      const variables: Record<string, string> = {
        ...kind.env,
        TRAIL_WORKER_ID: id,
        TRAIL_ROOT: settings.root,
        TRAIL_TASK_FILE: taskFile,
        TRAIL_PROMPT: text,
        TRAIL_BIN: binDir,
        ...(request.task === undefined ? {} : { TRAIL_TASK: request.task }),
        ...(request.path === undefined ? {} : { TRAIL_PATH: request.path })
      }
      const program = argv[0] ?? ""
      if (program !== "trail" && resolveCommand(program, workerPath(kind)) === null)
        return yield* fail(`command not found: ${program}`)

      const launched = yield* substrates
        .get(substrate)
        .launch({ id, dir, cwd, env: { ...inheritedEnv(env.all), ...variables }, argv, tag: tagOf(id) })
        .pipe(Effect.either)
      if (Either.isLeft(launched)) return yield* fail(launched.left.message)
      const { pid, window } = launched.right
      return yield* transition(id, "running", { pid, window }, { pid, window }, "start")
    })

  /**
   * The last lines a worker printed, kept in its `worker.failed` / `worker.lost` event as
   * `last_lines` (the log outlives its window and its output file); none when they cannot be read.
   */
  const endingData = (worker: Worker, reason: string) =>
    substrates
      .get(worker.substrate)
      .capture(refOf(worker))
      .pipe(
        Effect.map((text): Record<string, unknown> => {
          const lines = endingLines(text)
          return lines.length === 0 ? { reason } : { reason, last_lines: lines }
        }),
        // Whatever reading the output does (a typed error or a defect), the worker still ends.
        Effect.catchAllCause(() => Effect.succeed({ reason }))
      )

  /** Fails or loses a live worker for `reason`, its last lines in the event. */
  const endWith = (id: WorkerId, state: "failed" | "lost", reason: string, action: string) =>
    Effect.flatMap(get(id), (worker) =>
      Effect.flatMap(endingData(worker, reason), (data) => transition(id, state, { reason }, data, action))
    )

  const recordExit = (id: WorkerId, status: number | null) =>
    Effect.gen(function* () {
      const worker = yield* get(id)
      if (worker.exit_status !== null || (status === null && !isLiveWorkerState(worker.state))) return worker
      const noted = yield* record(id, "worker.exited", { status }, () => store.setExitStatus(id, status))
      if (!isLiveWorkerState(noted.state)) return noted
      const reason =
        status === 127
          ? `command not found (exit 127): ${worker.text.slice(0, 80)}`
          : `its program exited${status === null ? "" : ` with status ${status}`} before calling done or fail`
      return yield* endWith(id, status === 127 ? "failed" : "lost", reason, "end").pipe(
        Effect.catchTag("WorkerFinished", () => get(id))
      )
    })

  /** Workers whose program ended while nobody watched get their exit recorded (live ones end with it). */
  const reconcile = Effect.gen(function* () {
    const live = yield* Db.autocommit(store.unexited)
    for (const worker of live) {
      if (worker.state === "spawning") continue
      const exit = yield* processes.readExit(dirOf(worker.id))
      if (Option.isSome(exit))
        yield* recordExit(worker.id, exit.value).pipe(Effect.catchTag("WorkerNotFound", () => Effect.void))
    }
  })

  const listAll = Db.autocommit(store.all)

  const worktreeOf = (worker: Worker) =>
    Effect.gen(function* () {
      const base = yield* Db.autocommit(store.worktreeBase(worker.id))
      if (worker.worktree === null || base === null)
        return yield* new ChangeSetError({
          id: worker.id,
          reason: "none",
          detail: "has no worktree (its kind has worktree: false)"
        })
      return { path: worker.worktree, base } satisfies ChangeSets.Worktree
    })

  const gitFailure = (id: WorkerId) => (error: ChangeSets.GitError | ChangeSets.PromoteConflict) =>
    error._tag === "PromoteConflict"
      ? new ChangeSetError({ id, reason: "conflict", detail: `the change set does not apply cleanly: ${error.detail}` })
      : new ChangeSetError({ id, reason: "git", detail: `git ${error.operation} failed: ${error.detail}` })

  /** The worktree of a finished worker (a live one is still changing it: `whileLive` says what to do). */
  const finishedWorktree = (id: WorkerId, whileLive: string) =>
    Effect.flatMap(get(id), (worker) =>
      isLiveWorkerState(worker.state)
        ? Effect.fail(new ChangeSetError({ id, reason: "live", detail: `is still working; ${whileLive}` }))
        : worktreeOf(worker)
    )

  const counted = (stat: ChangeSets.DiffStat) => ({
    files: stat.files,
    insertions: stat.insertions,
    deletions: stat.deletions
  })

  /** Its window is gone or is another program's: the worker is lost, and nothing reached it. */
  const lostWhenGone =
    (id: WorkerId) =>
    <A, R>(effect: Effect.Effect<A, SubstrateError, R>) =>
      Effect.tapError(effect, (error) =>
        error.reason === "gone"
          ? Effect.ignore(transition(id, "lost", { reason: error.detail }, { reason: error.detail }, "end"))
          : Effect.void
      )

  /** How the substrate finds the worker: its tmux window's id, checked against the window's `@trail_worker`. */
  const refOf = (worker: Worker): WorkerRef => ({
    id: worker.id,
    window: worker.window,
    tag: tagOf(worker.id),
    dir: dirOf(worker.id),
    pid: worker.pid
  })

  const stopProgram = (worker: Worker, graceMs: number) => substrates.get(worker.substrate).stop(refOf(worker), graceMs)
  const close = (worker: Worker) => substrates.get(worker.substrate).close(refOf(worker))

  const closeWindow = (worker: Worker) =>
    isLiveWorkerState(worker.state) || worker.window === null
      ? Effect.void
      : Effect.zipRight(close(worker), database.transaction(store.clearWindow(worker.id)))

  const openWindows = (finishedBefore: number) => Db.autocommit(store.openWindows(finishedBefore))

  const renewLeases = (ids: ReadonlyArray<WorkerId>, owner: string, ttlMs: number) =>
    ids.length === 0
      ? Effect.succeed<ReadonlySet<WorkerId>>(new Set())
      : Effect.flatMap(now, (at) => database.transaction(store.renewLeases(ids, owner, at + ttlMs)))

  const gc = (options: { readonly olderThanMs: number; readonly force: boolean }) =>
    Effect.gen(function* () {
      yield* reconcile
      const cutoff = (yield* now) - options.olderThanMs
      const finished = (yield* listAll).filter(
        (w) => !isLiveWorkerState(w.state) && w.finished_at !== null && w.finished_at <= cutoff
      )
      let windows = 0
      let dirs = 0
      let worktrees = 0
      const kept: Array<{ id: WorkerId; reason: string }> = []
      for (const worker of finished) {
        if (worker.window !== null) {
          yield* closeWindow(worker)
          windows++
        }
        if (worker.worktree !== null) {
          const worktree = yield* worktreeOf(worker)
          const promoted = yield* Db.autocommit(store.promoted(worker.id))
          const stat = yield* withPlatform(ChangeSets.diffStat(worktree)).pipe(Effect.orElseSucceed(() => null))
          if (!promoted && !options.force && stat !== null && stat.files > 0) {
            kept.push({
              id: worker.id,
              reason: `its change set (${stat.files} file(s)) is not promoted: \`trail promote ${worker.id}\`, \`trail discard ${worker.id}\`, or --force`
            })
            continue
          }
          yield* withPlatform(ChangeSets.discard(settings.root, worktree)).pipe(Effect.mapError(gitFailure(worker.id)))
          yield* database.transaction(store.clearWorktree(worker.id))
          worktrees++
        }
        const dir = dirOf(worker.id)
        // A folder of .trail that cannot be removed is a defect, as it was when rmSync threw.
        const removed = yield* withPlatform(
          Effect.flatMap(FileSystem.FileSystem, (fs) =>
            Effect.flatMap(fs.exists(dir), (exists) =>
              exists ? Effect.as(fs.remove(dir, { recursive: true, force: true }), true) : Effect.succeed(false)
            )
          )
        ).pipe(Effect.orDie)
        if (removed) dirs++
      }
      return { windows_closed: windows, dirs_removed: dirs, worktrees_removed: worktrees, kept } satisfies WorkersGc
    })

  const service: WorkersShape = {
    spawn,
    get,
    list: Effect.zipRight(reconcile, listAll),
    live: Db.autocommit(store.live),
    show: (id) =>
      Effect.gen(function* () {
        yield* reconcile
        const worker = yield* get(id)
        const events = yield* Db.autocommit(store.events(id))
        const output = yield* substrates
          .get(worker.substrate)
          .capture(refOf(worker))
          .pipe(Effect.orElseSucceed(() => ""))
        const changeSet =
          worker.worktree === null
            ? null
            : yield* Effect.flatMap(worktreeOf(worker), (w) => withPlatform(ChangeSets.diffStat(w))).pipe(
                Effect.orElseSucceed(() => null)
              )
        return { worker, events, output, changeSet }
      }),
    todos: (id, todos) =>
      Effect.flatMap(get(id), (worker) =>
        Effect.flatMap(requireLive(worker, "update todos"), () =>
          record(id, "worker.todos", { todos }, (at) => store.setTodos(id, todos, at))
        )
      ),
    note: (id, text) => record(id, "worker.note", { text: text.slice(0, MAX_TEXT) }),
    wait: (id, question) => transition(id, "needs_input", { question }, { question }, "wait"),
    done: (id, result) =>
      result.evidence.filter((e) => e.trim() !== "").length === 0
        ? Effect.fail(
            new ProtocolError({
              reason: "evidence-required",
              detail:
                'done needs --evidence (paths, line numbers, command output). If you are not sure the work is done, call `trail worker wait --question "…"` instead.'
            })
          )
        : Effect.gen(function* () {
            // A worker with a worktree finishes with its change set counted (the inbox shows a patch).
            const worker = yield* get(id)
            const changeSet =
              worker.worktree === null
                ? null
                : yield* Effect.flatMap(worktreeOf(worker), (w) => withPlatform(ChangeSets.diffStat(w))).pipe(
                    Effect.map(counted),
                    Effect.orElseSucceed(() => null)
                  )
            return yield* transition(
              id,
              "ready",
              { result },
              changeSet === null ? { result } : { result, change_set: changeSet },
              "finish"
            )
          }),
    fail: (id, reason) => endWith(id, "failed", reason, "fail"),
    pressKeys: (id, keys) =>
      Effect.gen(function* () {
        const worker = yield* Effect.flatMap(get(id), (w) => requireLive(w, "answer a permission request"))
        yield* substrates.get(worker.substrate).pressKeys(refOf(worker), keys).pipe(lostWhenGone(id))
        return worker
      }),
    tell: (id, text, options) =>
      Effect.gen(function* () {
        const worker = yield* Effect.flatMap(get(id), (w) => requireLive(w, "be told anything"))
        const substrate = substrates.get(worker.substrate)
        const ref = refOf(worker)
        const typed = substrate.sendText(ref, options?.prefix === false ? text : `[trail] ${text}`)
        const permission = permissionOf(foldEvents(emptyInbox, yield* Db.autocommit(store.events(id))), {
          type: "worker",
          id
        })
        yield* (permission === undefined ? typed : denyThenType((keys) => substrate.pressKeys(ref, keys), typed)).pipe(
          lostWhenGone(id)
        )
        const told = yield* record(id, "worker.told", {
          text,
          ...(permission === undefined ? {} : { denied: permission.id })
        })
        return told.state === "needs_input"
          ? yield* transition(id, "running", {}, { answer: text }, "resume").pipe(
              Effect.catchTag("WorkerFinished", () => get(id))
            )
          : told
      }),
    kill: (id, reason = "killed by a human") =>
      Effect.gen(function* () {
        const target = yield* get(id)
        // Descendants, deepest first, so that no child outlives its parent's cancellation.
        const family = yield* Db.autocommit(store.family(id))
        // A finished worker: its window (kept for a look) is closed.
        if (!isLiveWorkerState(target.state) && family.every((w) => !isLiveWorkerState(w.state))) {
          yield* closeWindow(target)
          return [yield* get(id)]
        }
        const killed: Array<Worker> = []
        for (const worker of family) {
          if (!isLiveWorkerState(worker.state)) continue
          const cancelled = yield* transition(worker.id, "cancelled", { reason }, { reason }, "be killed").pipe(
            Effect.catchTag("WorkerFinished", () => get(worker.id))
          )
          yield* close(worker)
          killed.push(cancelled)
        }
        return killed
      }),
    respawn: (id) =>
      Effect.gen(function* () {
        yield* reconcile
        const worker = yield* get(id)
        if (isLiveWorkerState(worker.state))
          return yield* new WorkerFinished({
            id,
            state: worker.state,
            action: "be respawned while it is live (kill it first)"
          })
        return yield* spawn({
          text: worker.text,
          kind: worker.kind,
          task: worker.task ?? undefined,
          path: worker.path ?? undefined,
          parent: worker.parent ?? undefined,
          respawnOf: id
        })
      }),
    promote: (id) =>
      Effect.gen(function* () {
        const worktree = yield* finishedWorktree(id, "promote its change set once it has finished")
        const stat = yield* withPlatform(ChangeSets.promote(settings.root, worktree)).pipe(
          Effect.mapError(gitFailure(id))
        )
        yield* record(id, "worker.promoted", counted(stat))
        return stat
      }),
    discard: (id) =>
      Effect.gen(function* () {
        const worktree = yield* finishedWorktree(id, "kill it before discarding its change set")
        const stat = yield* withPlatform(ChangeSets.diffStat(worktree)).pipe(Effect.mapError(gitFailure(id)))
        yield* withPlatform(ChangeSets.discard(settings.root, worktree)).pipe(Effect.mapError(gitFailure(id)))
        yield* record(id, "worker.discarded", counted(stat), () => store.clearWorktree(id))
        return stat
      }),
    attachCommand: (id) =>
      id === null
        ? Effect.map(substrates.preferred, (name) => substrates.get(name).attachCommand(null))
        : Effect.map(get(id), (worker) => substrates.get(worker.substrate).attachCommand(worker.window ?? worker.id)),
    recordExit,
    end: (id, state, reason) =>
      state === "cancelled" ? transition(id, state, { reason }, { reason }, "end") : endWith(id, state, reason, "end"),
    renewLease: (id, owner, ttlMs) => Effect.map(renewLeases([id], owner, ttlMs), (renewed) => renewed.has(id)),
    renewLeases,
    stopProgram,
    close,
    dirOf,
    preflight,
    checkCommands: Effect.map(withPlatform(loadKinds), ({ entries, command, problems }) => ({
      kinds: [...entries.values()]
        .sort((a, b) => a.kind.name.localeCompare(b.kind.name))
        .map((entry) => {
          const check = checkKind(entry.kind, entry.trust)
          const refused = untrusted(entry, command)
          return refused === null ? check : { ...check, ok: false, detail: `${refused.message} (${check.detail})` }
        }),
      command,
      problems
    })),
    present: (workers) =>
      Effect.map(
        Effect.forEach(SubstrateName.literals, (name) => {
          const on = workers.filter((worker) => worker.substrate === name)
          return on.length === 0 ? Effect.succeed(new Set<string>()) : substrates.get(name).present(on.map(refOf))
        }),
        (sets) => new Set(workers.filter((w) => sets.some((set) => set.has(w.id))).map((w) => w.id))
      ),
    closeWindow,
    openWindows,
    gc
  }
  return Workers.of(service)
})

/** The Workers service; needs the Database, Substrates, WorkerSettings and the platform. */
export const layer = Layer.effect(Workers, Effect.zipRight(Migrations.migrate, make)).pipe(
  Layer.provide(WorkerStore.Default)
)
