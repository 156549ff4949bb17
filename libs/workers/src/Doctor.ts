/**
 * `trail doctor`: checks of one root, each a name, a verdict and a line for a person. The root
 * (found and its config valid), the store (integrity, schema version, events, the supervisor's
 * lock), tmux, every kind's trust and program, the Claude Code hooks of each settings file
 * (PreCompact too when `checkpoint.on_precompact` is on) and whether the program they run is on
 * PATH, and the payloads the hook dropped. A check that cannot run is a failed check, never an error: the
 * report always comes back. The supervisor's lock counts as held as `trail supervise` counts it
 * ({@link SupervisorLock.isLive}: its lease, and its pid when held on this machine).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import type { TrailConfig } from "@trail/domain"
import { Database, Migrations } from "@trail/store"
import { Clock, Effect, Either, Option, Schema } from "effect"
import * as HookSettings from "./HookSettings.js"
import * as Hooks from "./Hooks.js"
import * as Kinds from "./Kinds.js"
import * as SupervisorLock from "./SupervisorLock.js"
import * as Tmux from "./Tmux.js"
import { type KindsCheck, resolveCommand } from "./Workers.js"

/** One check: `ok` false makes the whole report fail (`trail doctor` exits 1). */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface Report {
  /** Every check passed. */
  readonly ok: boolean
  readonly checks: ReadonlyArray<Check>
}

/** The root's paths the checks look at (a scheduler `Project`'s fields). */
export interface Root {
  readonly root: string
  readonly stateDir: string
  readonly databaseFile: string
}

export interface Input<R = never> {
  /** The root and its config, or why none was found or its config is invalid. */
  readonly root: Either.Either<{ readonly project: Root; readonly config: TrailConfig }, { readonly message: string }>
  /** The settings file of each scope (HookSettings.fileOf), in the order to report them. */
  readonly hookFiles: ReadonlyArray<readonly [HookSettings.Scope, string]>
  /** The kinds' check (`Workers.checkCommands`); its failure is reported as the `kinds` check. */
  readonly kinds: Effect.Effect<KindsCheck, { readonly message: string }, R>
  /**
   * The PATH a hook's bare program name (`trail`) is looked up on: doctor's own, which a Claude
   * Code session started from the same shell runs its hooks with.
   */
  readonly path: string
}

const QuickCheck = Schema.Struct({ quick_check: Schema.String })
const UserVersion = Schema.Struct({ user_version: Schema.Number })
const LatestEvent = Schema.Struct({ latest: Schema.Number })

/**
 * What the store says about itself, read through `SqlClient` after migrating it. The pragmas are
 * read as table-valued functions: their rows are then shaped as any query's are.
 */
const storeFacts = Effect.gen(function* () {
  yield* Migrations.migrate
  const sql = yield* SqlClient.SqlClient
  const integrity = yield* SqlSchema.findAll({
    Request: Schema.Void,
    Result: QuickCheck,
    execute: () => sql`SELECT quick_check FROM pragma_quick_check`
  })(undefined)
  const version = yield* SqlSchema.single({
    Request: Schema.Void,
    Result: UserVersion,
    execute: () => sql`SELECT user_version FROM pragma_user_version`
  })(undefined)
  const events = yield* SqlSchema.single({
    Request: Schema.Void,
    Result: LatestEvent,
    execute: () => sql`SELECT COALESCE(MAX(id), 0) AS latest FROM events`
  })(undefined)
  const supervisor = yield* SupervisorLock.holder
  return {
    // quick_check answers one row "ok", or one row per problem found.
    check: integrity.map((row) => row.quick_check).join("; "),
    version: version.user_version,
    events: events.latest,
    supervisor
  }
}).pipe(Effect.mapError((error) => (error._tag === "StoreError" ? error : Database.toStoreError(error))))

/** The supervisor's lock when a supervisor still holds the root ({@link SupervisorLock.isLive}). */
const runningSupervisor = (lock: Option.Option<SupervisorLock.Holder>) =>
  Effect.gen(function* () {
    if (Option.isNone(lock)) return lock
    const now = yield* Clock.currentTimeMillis
    return (yield* SupervisorLock.isLive(lock.value, now)) ? lock : Option.none()
  })

const storeChecks = (project: Root) =>
  storeFacts.pipe(
    Effect.provide(Database.layer({ filename: project.databaseFile })),
    Effect.flatMap((s) => Effect.map(runningSupervisor(s.supervisor), (running) => ({ ...s, running }))),
    Effect.match({
      onFailure: (error): Array<Check> => [{ name: "store", ok: false, detail: error.message }],
      onSuccess: ({ running, ...s }): Array<Check> => {
        return [
          {
            name: "store",
            ok: s.check === "ok" && s.version === Migrations.LATEST_MIGRATION,
            detail: `${project.databaseFile}: integrity ${s.check}, schema ${s.version}/${Migrations.LATEST_MIGRATION}, ${s.events} event(s)`
          },
          {
            name: "supervisor",
            ok: true,
            detail: Option.match(running, {
              onSome: (lock) => `running (pid ${lock.pid} on ${lock.host})`,
              onNone: () => "not running (workers are not supervised; `trail supervise`)"
            })
          }
        ]
      }
    })
  )

const tmuxCheck = (config: TrailConfig) =>
  Effect.map(Tmux.version(), (version): Check => ({
    name: "tmux",
    ok: Option.isSome(version) || config.worker.substrate === "process",
    detail: Option.match(version, {
      onSome: (v) => `${v}; workers on tmux -L ${config.worker.tmux_socket}`,
      onNone: () =>
        config.worker.substrate === "tmux"
          ? 'not installed, and worker.substrate = "tmux": workers cannot start'
          : "not installed: workers run as plain processes; sessions cannot be replied to"
    })
  }))

/** Every kind's trust and agent program, the trust of .trail.toml's worker.command, every kind file that did not load. */
const kindChecks = <R>(kinds: Input<R>["kinds"]) =>
  Effect.flatMap(Path.Path, (path) =>
    Effect.match(kinds, {
      onFailure: (error): Array<Check> => [{ name: "kinds", ok: false, detail: `cannot be checked: ${error.message}` }],
      onSuccess: ({ command, kinds, problems }): Array<Check> => {
        const runnable = Kinds.isRunnable(command.trust)
        return [
          {
            name: Kinds.WORKER_COMMAND,
            ok: runnable,
            detail:
              command.trust === "builtin"
                ? `trail's default (${command.command.join(" ")})`
                : runnable
                  ? `${command.source} sets ${command.command.join(" ")}: trusted`
                  : `${command.source} sets ${command.command.join(" ")}: ${command.trust === "changed" ? "changed since it was trusted" : "not trusted"}; review it, then \`trail kinds trust ${Kinds.WORKER_COMMAND}\``
          },
          ...kinds.map((c) => ({ name: `kind ${c.kind}`, ok: c.ok, detail: `${c.trust}: ${c.detail}` })),
          ...problems.map((p) => ({
            name: `kind file ${path.basename(p.file)}`,
            ok: false,
            detail: `${p.file}: ${p.field === "" ? "" : `${p.field}: `}${p.message}`
          }))
        ]
      }
    })
  )

/** A settings file of {@link Input.hookFiles}, parsed (or why it cannot be read: the `hooks` check's failure). */
interface HookFile {
  readonly scope: HookSettings.Scope
  readonly file: string
  readonly settings: Either.Either<unknown, { readonly message: string }>
}

/**
 * The hooks of each settings file: the six, and `PreCompact` when `preCompact`
 * (`checkpoint.on_precompact = true`: without it no checkpoint is saved before a compaction).
 */
const hookChecks = (files: ReadonlyArray<HookFile>, preCompact: boolean): Array<Check> => {
  const found = files.map(({ file, scope, settings }) => ({
    scope,
    file,
    installed: Either.map(settings, (parsed) => Hooks.installedEvents(parsed, preCompact))
  }))
  const expected: ReadonlyArray<Hooks.HookEventName> = preCompact
    ? [...Hooks.HOOK_EVENTS, Hooks.PRE_COMPACT]
    : Hooks.HOOK_EVENTS
  const checks = found.map(({ scope, file, installed }): Check => {
    const flag = scope === "project" ? "" : ` --${scope}`
    return {
      name: `hooks (${scope})`,
      ok: Either.isRight(installed),
      // The error names the file and why: unreadable (the OS reason) or not valid JSON.
      detail: Either.match(installed, {
        onLeft: (error) => error.message,
        onRight: (events) =>
          events.length === expected.length
            ? `${file}: all ${events.length} installed (${events.join(", ")})`
            : events.length === 0
              ? `${file}: none installed (\`trail hooks install${flag}\`)`
              : `${file}: only ${events.join(", ")}; missing ${expected.filter((e) => !events.includes(e)).join(", ")} (\`trail hooks install${flag}\` adds the rest)`
      })
    }
  })
  const lists = found.flatMap((f) => (Either.isRight(f.installed) ? [f.installed.right] : []))
  const complete = lists.some((events) => Hooks.HOOK_EVENTS.every((e) => events.includes(e)))
  return [
    ...checks,
    ...(complete
      ? []
      : [
          {
            name: "sessions",
            ok: true,
            detail: "no hooks installed: interactive sessions will not reach the inbox"
          }
        ]),
    ...(preCompact && !lists.some((events) => events.includes(Hooks.PRE_COMPACT))
      ? [
          {
            name: "precompact",
            ok: true,
            detail:
              "checkpoint.on_precompact = true, but no settings file has trail's PreCompact hook: no checkpoint is saved before a compaction (`trail hooks install` adds it)"
          }
        ]
      : [])
  ]
}

/**
 * A settings file whose trail hooks run a program by its bare name (`trail hook claude`: project
 * settings are shared, so they name no path of one checkout) that is not on `path` fails: Claude
 * Code would run the hooks, the shell would not find `trail`, and no session would reach the
 * inbox while `hooks` says all are installed. A file that cannot be read is `hooks`' failure.
 */
const hookCommandChecks = (found: ReadonlyArray<HookFile>, path: string): Array<Check> =>
  found.flatMap(({ file, scope, settings }) =>
    Either.isLeft(settings)
      ? []
      : Hooks.trailHookCommands(settings.right).flatMap((command): Array<Check> => {
          const program = command.split(/\s+/)[0] ?? ""
          if (program.includes("/") || resolveCommand(program, path) !== null) return []
          return [
            {
              name: `hook command (${scope})`,
              ok: false,
              detail: `${file}: the hooks run \`${command}\`, and ${program} is not on this PATH: a Claude Code session started from a shell like this one records nothing. Put trail on PATH in your shell's profile (e.g. its checkout's node_modules/.bin), or install the hooks by absolute path with \`trail hooks install --local\` (or --user)`
            }
          ]
        })
  )

/** The file `trail hook claude` logs the payloads it dropped to, one line each. */
const hookErrorsFile = (path: Path.Path, stateDir: string) => path.join(stateDir, "hook-errors.log")

const hookErrorsCheck = (project: Root) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const text = yield* Effect.option(fs.readFileString(hookErrorsFile(path, project.stateDir)))
    return Option.match(text, {
      onNone: (): Array<Check> => [],
      onSome: (text): Array<Check> => {
        const lines = text.trim().split("\n")
        return [
          {
            name: "hook errors",
            ok: true,
            detail: `${lines.length} dropped payload(s); last: ${lines[lines.length - 1] ?? ""}`
          }
        ]
      }
    })
  })

/** Runs every check of `input` and reports them in a fixed order. */
export const report = <R>(input: Input<R>) =>
  Effect.gen(function* () {
    const checks: Array<Check> = []
    if (Either.isLeft(input.root)) checks.push({ name: "root", ok: false, detail: input.root.left.message })
    else {
      const { project, config } = input.root.right
      checks.push({ name: "root", ok: true, detail: project.root })
      checks.push(...(yield* storeChecks(project)))
      checks.push(yield* tmuxCheck(config))
      checks.push(...(yield* kindChecks(input.kinds)))
      // Each settings file read once, for both checks.
      const hookFiles = yield* Effect.forEach(input.hookFiles, ([scope, file]) =>
        Effect.map(Effect.either(HookSettings.read(file)), (read) => ({
          scope,
          file,
          settings: Either.map(read, (r) => r.settings)
        }))
      )
      checks.push(...hookChecks(hookFiles, config.checkpoint.on_precompact))
      checks.push(...hookCommandChecks(hookFiles, input.path))
      checks.push(...(yield* hookErrorsCheck(project)))
    }
    const result: Report = { ok: checks.every((c) => c.ok), checks }
    return result
  })
