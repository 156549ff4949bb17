/**
 * Attention routing (SPEC §3): `trail inbox` and acting on its items (`reply`, `jump`, `skip`,
 * `dismiss`, `restore`, `log`), Claude Code hooks (`trail hook claude`, `trail hooks
 * install|uninstall`) and `trail doctor`.
 */
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import { isTrailError, type ReviewItem, UsageError, WorkerId, WorkerNotFound } from "@trail/domain"
import { Project } from "@trail/scheduler"
import { Live } from "@trail/supervisor"
import { Doctor, HookSettings, Inbox, Jump, StoreChanges, Workers } from "@trail/workers"
import * as Processes from "@trail/workers/Processes"
import { PERMISSION_ACTIONS } from "@trail/workers/Permission"
import { Checkpoints, layer as checkpointsLayer } from "@trail/checkpoints"
import { Archive, type Database } from "@trail/store"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Cause, Clock, Effect, Either, Exit, Fiber, Option, Runtime, Schema, Stream } from "effect"
import { claudeUserDir, cwd, envVar, explicitRoot, pretty, print, printStream, trail } from "./Common.js"
import {
  follow,
  followOption,
  limitOption,
  ndjson,
  prettyFollower,
  sinceOption,
  subscribeIf,
  windowOf,
  writeEpisodes
} from "./LogReading.js"
import { ExitCode } from "./Output.js"
import { bold, cyan, dim, green, pad, red, safeData, safeText, yellow } from "./Pretty.js"
import type { TuiApi } from "./tui/InboxTui.js"
import * as Stdin from "./Stdin.js"
import { Root, rootLayer, rootSettings } from "./WorkerCommands.js"

/**
 * The Inbox of the root found from `--root` / `$TRAIL_ROOT` / the cwd, with its Workers and
 * Database: each command that needs it gets it once, through `Command.provide`.
 */
const InboxLive = rootLayer((settings) => Live.inboxLayer(settings))

/** Root + the live EventLog over the Database (`log`). */
const EventLogLive = rootLayer((settings) => Live.eventLogLayer(settings))

/** Runs `f` with the provided Inbox ({@link InboxLive}). */
const withInbox = <A, E, R>(f: (inbox: Inbox.InboxShape) => Effect.Effect<A, E, R>) => Effect.flatMap(Inbox.Inbox, f)

const chip = (kind: ReviewItem["kind"]) => {
  switch (kind) {
    case "needs_input":
      return yellow("[needs reply]")
    case "permission":
      return yellow("[permission]")
    case "failed":
      return red("[failed]")
    case "patch_proposed":
      return cyan("[changed]")
    case "ready":
      return green("[ready]")
    case "stopped":
      return green("[waiting]")
    case "checkpoint":
      return dim("[checkpoint]")
  }
}

const actionKeys: Record<string, string> = {
  reply: "c Reply",
  continue: "Enter Continue",
  allow: "y Allow",
  "allow-always": "Y Allow always",
  deny: "n Deny",
  jump: "Enter Jump",
  attach: "a Attach",
  show: "Enter Show",
  promote: "p Promote",
  discard: "x Discard",
  respawn: "r Respawn",
  skip: "s Skip",
  dismiss: "Space Dismiss",
  restore: "u Restore"
}

const ago = (since: number, now: number) => {
  const secs = Math.max(0, Math.round((now - since) / 1000))
  return secs < 60 ? `${secs}s ago` : secs < 3600 ? `${Math.round(secs / 60)}m ago` : `${Math.round(secs / 3600)}h ago`
}

/** A decision card (seed 001): headline and chip, bullets, the actions that fit, provenance. */
export const renderCard = (item: ReviewItem, now: number, selected = true): string => {
  const head = `${selected ? "▸" : " "} ${bold(item.headline)}  ${chip(item.kind)}`
  if (!selected) return head
  const bullets = item.bullets.map((b) => `    • ${b}`)
  const actions = `    ${item.actions.map((a) => `[${actionKeys[a] ?? a}]`).join("  ")}`
  const footer = `    ${dim(`${item.provenance} · ${ago(item.since, now)} · ${item.id}`)}`
  return [head, ...(bullets.length > 0 ? ["", ...bullets] : []), "", actions, footer].join("\n")
}

const renderInbox = (items: ReadonlyArray<ReviewItem>, now: number) =>
  items.length === 0 ? dim("Nothing needs you.") : items.map((item) => renderCard(item, now)).join("\n\n")

const itemArg = Args.text({ name: "item" }).pipe(Args.withDescription("An item id (i42), a worker id or a session id."))

const printItem = (item: ReviewItem, prettyFlag: boolean) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    print(item, { pretty: prettyFlag, render: (i) => renderCard(i, now) })
  )

// ---------------------------------------------------------------------------------------------
// inbox

const inboxNext = Command.make("next", { pretty }, (args) =>
  withInbox((inbox) =>
    Effect.gen(function* () {
      yield* inbox.reconcile
      const [first] = yield* inbox.items({ limit: 1 })
      const now = yield* Clock.currentTimeMillis
      yield* print(first ?? null, {
        pretty: args.pretty,
        render: (item) => (item === null ? dim("Nothing needs you.") : renderCard(item, now))
      })
    })
  )
).pipe(Command.provide(InboxLive), Command.withDescription("The one item that needs you most (null when none)."))

/** Items a `--pretty` inbox shows when not asked for a `--limit`: a screenful of cards (about 6 lines each). */
const screenful = () =>
  process.stdout.isTTY === true ? Math.max(3, Math.floor(((process.stdout.rows || 24) - 2) / 6)) : PRETTY_LIMIT

/** Items a `--pretty` inbox shows outside a terminal when not asked for a `--limit`. */
const PRETTY_LIMIT = 20

/** Items read per page when the whole inbox is printed as JSON. */
const JSON_PAGE = 1_000

/**
 * Prints every visible item as one JSON array, page by page: memory follows the page, not the
 * inbox (the same value `print` would write for the whole array).
 */
const inbox = Command.make(
  "inbox",
  {
    rebuild: Options.boolean("rebuild").pipe(
      Options.withDescription("Fold the whole event log again from nothing (the same result as the live inbox).")
    ),
    tui: Options.boolean("tui").pipe(Options.withDescription("The interactive inbox (needs a terminal).")),
    limit: Options.integer("limit").pipe(
      Options.withSchema(Schema.Int.pipe(Schema.positive())),
      Options.optional,
      Options.withDescription(
        "At most N items, most stuck first (default: all as JSON; a screenful with --pretty, which says how many more there are)."
      )
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      if (args.tui) return yield* interactiveInbox
      const prettyOutput = args.pretty || (yield* trail).pretty
      yield* withInbox((inbox) =>
        Effect.gen(function* () {
          if (args.rebuild) yield* inbox.rebuild
          yield* inbox.reconcile
          if (!prettyOutput && Option.isNone(args.limit))
            return yield* printStream(Stream.flattenIterables(inbox.pages(JSON_PAGE)), {
              pretty: false,
              render: () => "",
              empty: ""
            })
          const limit = Option.getOrElse(args.limit, screenful)
          const items = yield* inbox.items({ limit })
          const now = yield* Clock.currentTimeMillis
          const more = prettyOutput && items.length === limit ? (yield* inbox.count()) - items.length : 0
          yield* print(items, {
            pretty: args.pretty,
            render: (items) =>
              more <= 0
                ? renderInbox(items, now)
                : `${renderInbox(items, now)}\n\n${dim(`… and ${more} more (trail inbox --limit N shows N)`)}`
          })
        })
      )
    })
).pipe(
  Command.provide(InboxLive),
  Command.withDescription("What needs you, most stuck first: workers waiting or failed, sessions blocked or done."),
  Command.withSubcommands([inboxNext])
)

/**
 * The bundled TUI module (dist/tui.mjs, next to the CLI bundle). bin/trail.cjs runs the bundle in
 * a vm.Script, where `import()` is not available without an experimental flag, so it lends its
 * own `import` as `globalThis.__trailImport`.
 */
const tuiModule = async (): Promise<TuiModule> => {
  const url = pathToFileURL(path.join(__dirname, "tui.mjs")).href
  const lent: unknown = Reflect.get(globalThis, "__trailImport")
  const loaded: unknown = await (typeof lent === "function" ? lent(url) : import(url))
  if (!isTuiModule(loaded)) throw new Error(`${url} is not trail's TUI module`)
  return loaded
}

type TuiModule = typeof import("./tui/InboxTui.js")

/** The bundle's exports as far as the CLI calls them (it was built from tui/InboxTui.ts). */
const isTuiModule = (loaded: unknown): loaded is TuiModule =>
  typeof loaded === "object" && loaded !== null && "runTui" in loaded && typeof loaded.runTui === "function"

/** What the TUI's actions need: the inbox, the workers, the store (checkpoints), and what `jump` needs. */
type TuiContext =
  | Inbox.Inbox
  | Workers.Workers
  | FileSystem.FileSystem
  | Path.Path
  | Database.Database
  | SqlClient.SqlClient
  | Effect.Effect.Context<ReturnType<typeof jumpTo>>

/** `trail inbox --tui`: the TUI over this root's Inbox and Workers. */
const interactiveInbox = Effect.gen(function* () {
  if (process.stdin.isTTY !== true || process.stdout.isTTY !== true)
    return yield* new UsageError({ message: "--tui needs a terminal; `trail inbox` prints the same items as JSON" })
  const settings = yield* Root
  yield* Effect.gen(function* () {
    const runtime = yield* Effect.runtime<TuiContext>()
    const clock = yield* Effect.clock
    /** Runs an effect for the TUI: its failure becomes an Error with the failure's message. */
    const run = <A, E>(effect: Effect.Effect<A, E, TuiContext>) =>
      Runtime.runPromiseExit(runtime)(effect).then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        const failure = Cause.failureOption(exit.cause)
        throw new Error(
          safeText(
            Option.isSome(failure) && isTrailError(failure.value)
              ? failure.value.message
              : (Cause.pretty(exit.cause).split("\n")[0] ?? "")
          )
        )
      })
    const inbox = yield* Inbox.Inbox
    const workers = yield* Workers.Workers
    /** The worker an item is about (an action on a session's item that only workers have fails). */
    const workerOf = (item: ReviewItem) =>
      Effect.mapError(Schema.decode(WorkerId)(item.subject.id), () => new WorkerNotFound({ id: item.subject.id }))
    const api: TuiApi<ReviewItem> = {
      load: (filter, limit) => run(Effect.all({ items: inbox.items({ filter, limit }), total: inbox.count(filter) })),
      // Items and action results are data (hook messages, folder names): shown, never obeyed.
      card: (item, selected) => renderCard(safeData(item), clock.unsafeCurrentTimeMillis(), selected),
      act: (action, item, text) =>
        run(
          Effect.gen(function* () {
            switch (action) {
              case "reply":
                yield* inbox.reply(item.id, text ?? "")
                return `replied to ${item.subject.id}`
              case "allow":
              case "allow-always":
              case "deny":
                yield* inbox.decide(item.id, action)
                return `${action} sent to ${item.subject.id}`
              case "dismiss":
                yield* inbox.dismiss(item.id)
                return `dismissed ${item.id}`
              case "skip":
                yield* inbox.skip(item.id)
                return `${item.id} waits at the back for 30 s`
              case "restore":
                yield* inbox.restore(item.id)
                return `restored ${item.id}`
              case "promote": {
                const worker = yield* workerOf(item)
                const stat = yield* workers.promote(worker)
                return `promoted ${stat.files} file(s) of ${worker}`
              }
              case "discard": {
                const worker = yield* workerOf(item)
                yield* workers.discard(worker)
                return `discarded the change set of ${worker}`
              }
              case "respawn":
                return `respawned as ${(yield* workers.respawn(yield* workerOf(item))).id}`
              case "continue": {
                // A checkpoint item: arm it for the next Claude Code session, as `trail continue` does.
                const armed = yield* Effect.flatMap(Checkpoints, (checkpoints) =>
                  checkpoints.arm(item.subject.id)
                ).pipe(Effect.provide(checkpointsLayer({ root: settings.project.root })))
                return `${armed.checkpoint.id} armed: the next Claude Code session started in this root gets it`
              }
              case "show": {
                if (item.subject.type !== "worker") return item.headline
                const shown = yield* workers.get(yield* workerOf(item))
                return `${shown.id} ${shown.state}: ${shown.result?.summary ?? shown.reason ?? shown.text}`
              }
              default: {
                const jumped = yield* jumpTo(item.id)
                return jumped.command === null
                  ? `jumped to ${jumped.target}`
                  : `outside tmux: ${jumped.command.join(" ")}`
              }
            }
          })
        ).then(safeText),
      watch: (onChange, onStop) => {
        // The TUI keeps going on its timer when the watch stops (see InboxTui), so its end is
        // told, never swallowed: a failure with the platform's reason, an end as such.
        const stopped = (reason: string) => Effect.sync(() => onStop(safeText(reason)))
        const stateDir = settings.project.stateDir
        const watching = Runtime.runFork(runtime)(
          Stream.runForEach(StoreChanges.changes(stateDir, { onStop: stopped }), () => Effect.sync(onChange)).pipe(
            Effect.catchAllDefect((defect) => stopped(String(defect)))
          )
        )
        return () => Runtime.runFork(runtime)(Fiber.interrupt(watching))
      }
    }
    // A person at a terminal asked for the TUI: Ink, believing itself in CI ($CI set, as in some
    // shells and in test runners), would draw only its last frame. Ink reads process.env itself,
    // so this is written there (a documented exception, docs/architecture.md).
    delete process.env["CI"]
    delete process.env["CONTINUOUS_INTEGRATION"]
    const tui = yield* Effect.promise(tuiModule)
    yield* Effect.promise(() => tui.runTui(api))
  })
})

const reply = Command.make(
  "reply",
  {
    item: itemArg,
    text: Args.text({ name: "text" }).pipe(Args.repeated, Args.withDescription("What to type (default: stdin).")),
    action: Options.choice("action", PERMISSION_ACTIONS).pipe(
      Options.optional,
      Options.withDescription(
        "Answer a permission item with the dialog's own keys: allow (once), allow-always, deny. Text on a permission item denies, then sends the text."
      )
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      if (Option.isSome(args.action)) {
        if (args.text.length > 0)
          return yield* new UsageError({ message: "--action takes no TEXT (a text reply on a permission item denies)" })
        const action = args.action.value
        const item = yield* withInbox((inbox) => inbox.decide(args.item, action))
        return yield* printItem(item, args.pretty)
      }
      const text = args.text.length > 0 ? args.text.join(" ") : (yield* Stdin.readAll).replace(/\n$/, "")
      if (text === "") return yield* new UsageError({ message: "nothing to reply: give TEXT or pipe it on stdin" })
      const item = yield* withInbox((inbox) => inbox.reply(args.item, text))
      yield* printItem(item, args.pretty)
    })
).pipe(
  Command.provide(InboxLive),
  Command.withDescription(
    "Type TEXT (yours, literally) into the item's pane, then Enter; on a permission item, deny first. --action allow|allow-always|deny answers a permission dialog."
  )
)

const simpleAction = (name: "dismiss" | "restore", description: string) =>
  Command.make(name, { item: itemArg, pretty }, (args) =>
    Effect.flatMap(
      withInbox((inbox) => inbox[name](args.item)),
      (item) => printItem(item, args.pretty)
    )
  ).pipe(Command.provide(InboxLive), Command.withDescription(description))

/** `trail skip ITEM` (the `skip` command also skips folders: see Cli.ts). */
export const skipItem = (item: string, prettyFlag: boolean) =>
  Effect.flatMap(withInbox((inbox) => inbox.skip(item)).pipe(Effect.provide(InboxLive)), (skipped) =>
    printItem(skipped, prettyFlag)
  )
const dismiss = simpleAction("dismiss", "Hide the item (trail restore brings it back).")
const restore = simpleAction("restore", "Bring a dismissed or skipped item back.")

/** `trail jump`'s work (Jump.jump) with this root's settings and `$TMUX`. */
const jumpTo = (ref: string) =>
  Effect.gen(function* () {
    const settings = yield* Root
    return yield* Jump.jump(ref, {
      tmuxEnv: yield* envVar("TMUX"),
      socket: settings.config.worker.tmux_socket,
      session: settings.config.worker.session
    })
  })

const jump = Command.make("jump", { item: itemArg }, (args) =>
  Effect.flatMap(jumpTo(args.item), (result) => print(result, { pretty: false, render: () => "" }))
).pipe(
  Command.provide(InboxLive),
  Command.withDescription("Switch your tmux client to the item's pane (prints the attach command outside tmux).")
)

const log = Command.make(
  "log",
  {
    worker: Options.text("worker").pipe(Options.optional, Options.withDescription("Only this worker.")),
    session: Options.text("session").pipe(Options.optional, Options.withDescription("Only this session.")),
    since: sinceOption,
    limit: limitOption,
    follow: followOption,
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      if (Option.isSome(args.worker) && Option.isSome(args.session))
        return yield* new UsageError({ message: "--worker and --session exclude each other" })
      const only = Option.isSome(args.worker)
        ? { type: "worker" as const, id: args.worker.value }
        : Option.isSome(args.session)
          ? { type: "session" as const, id: args.session.value }
          : undefined
      const pretty = args.pretty || (yield* trail).pretty
      const archiveDir = Archive.dirOf((yield* Root).project.databaseFile)
      // Subscribed first so nothing appended between the window and the live feed is lost.
      const subscription = yield* subscribeIf(args.follow)
      const window = yield* windowOf(archiveDir, args, only)
      yield* writeEpisodes(archiveDir, window, pretty, only)
      if (Option.isSome(subscription))
        yield* follow(subscription.value, window.upTo, pretty ? prettyFollower() : ndjson, only)
    }).pipe(Effect.scoped)
).pipe(
  Command.provide(EventLogLive),
  Command.withDescription(
    "The forensic timeline: events grouped by worker and session (JSON: [{subject, events}], archived events included). --since ID|DATE, --limit N (the newest N events), --follow (then one event per line: NDJSON, or lines under their subject)."
  )
)

// ---------------------------------------------------------------------------------------------
// hooks

const hookClaude = Command.make("claude", {}, () =>
  // bin/trail.cjs runs hook.ts directly for exactly `trail hook claude`; this is the same code
  // for the other ways in (the unbundled CLI, `trail --root R hook claude`). Imported when run, so
  // that the other commands do not initialise the hook's store and config code.
  Effect.promise(() => import("./hook.js").then((hook) => hook.runHook()))
).pipe(
  Command.withDescription(
    "(Claude Code hook) Read one hook payload from stdin and record it; prints nothing, always exits 0."
  )
)

const hook = Command.make("hook").pipe(
  Command.withDescription("Entry points for agents' hooks."),
  Command.withSubcommands([hookClaude])
)

const scope = {
  user: Options.boolean("user").pipe(Options.withDescription("~/.claude/settings.json (every session of yours).")),
  project: Options.boolean("project").pipe(
    Options.withDescription(
      "<root>/.claude/settings.json (sessions in this project, committed for the team; the default). Its command is `trail hook claude`: `trail` must be on PATH."
    )
  ),
  local: Options.boolean("local").pipe(
    Options.withDescription("<root>/.claude/settings.local.json (sessions in this checkout only; not committed).")
  )
}

const scopeOf = (args: { readonly user: boolean; readonly project: boolean; readonly local: boolean }) => {
  const chosen = (["user", "project", "local"] as const).filter((s) => args[s])
  if (chosen.length > 1)
    return Effect.fail(new UsageError({ message: `--${chosen.join(" and --")} exclude each other` }))
  return Effect.succeed<HookSettings.Scope>(chosen[0] ?? "project")
}

/** The settings file of `where`, for the root found from `--root` / `$TRAIL_ROOT` / the cwd (else the cwd). */
const settingsFile = (where: HookSettings.Scope) =>
  Effect.gen(function* () {
    const explicit = yield* explicitRoot
    const here = yield* cwd
    const found = yield* Project.findRoot({ explicit, cwd: here }).pipe(Effect.option)
    const root = Option.match(found, { onNone: () => here, onSome: (p) => p.root })
    return yield* HookSettings.fileOf(where, { root, userDir: yield* claudeUserDir })
  })

/**
 * The command Claude Code runs. Project settings are committed and shared, so they name `trail`
 * on PATH (no path of this checkout); user and local settings name this trail by absolute path.
 */
const hookCommand = (where: HookSettings.Scope) => {
  if (where === "project") return "trail hook claude"
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)
  return `${quote(process.execPath)} ${quote(process.argv[1] ?? "trail")} hook claude`
}

/** `checkpoint.on_precompact` of the root found from `--root` / `$TRAIL_ROOT` / the cwd (false without one). */
const preCompactEnabled = Effect.gen(function* () {
  const found = yield* Project.findRoot({ explicit: yield* explicitRoot, cwd: yield* cwd }).pipe(Effect.option)
  if (Option.isNone(found)) return false
  return (yield* Project.loadConfig(found.value)).checkpoint.on_precompact
})

const hooksInstall = Command.make("install", { ...scope, pretty }, (args) =>
  Effect.gen(function* () {
    const where = yield* scopeOf(args)
    const installed = yield* HookSettings.install(yield* settingsFile(where), hookCommand(where), {
      preCompact: yield* preCompactEnabled
    })
    yield* print(installed, {
      pretty: args.pretty,
      render: (r) =>
        `${r.settings_file}: ${
          r.added.length === 0 && r.upgraded.length === 0
            ? "already installed"
            : [
                ...(r.added.length === 0 ? [] : [`added ${r.added.join(", ")}`]),
                ...(r.upgraded.length === 0 ? [] : [`upgraded ${r.upgraded.join(", ")}`])
              ].join("; ")
        }`
    })
  })
).pipe(
  Command.withDescription(
    "Add trail's six Claude Code hooks to settings.json, and PreCompact when checkpoint.on_precompact is on (idempotent; other hooks kept)."
  )
)

const hooksUninstall = Command.make("uninstall", { ...scope, pretty }, (args) =>
  Effect.gen(function* () {
    const uninstalled = yield* HookSettings.uninstall(yield* settingsFile(yield* scopeOf(args)))
    yield* print(uninstalled, {
      pretty: args.pretty,
      render: (r) =>
        `${r.settings_file}: ${r.removed.length === 0 ? "nothing to remove" : `removed ${r.removed.join(", ")}`}`
    })
  })
).pipe(Command.withDescription("Remove exactly the hook entries trail added."))

const hooks = Command.make("hooks").pipe(
  Command.withDescription("Install or remove trail's Claude Code hooks."),
  Command.withSubcommands([hooksInstall, hooksUninstall])
)

// ---------------------------------------------------------------------------------------------
// doctor

const doctor = Command.make("doctor", { pretty }, (args) =>
  Effect.gen(function* () {
    const root = yield* Effect.either(rootSettings)
    const hookFiles = yield* Effect.forEach(HookSettings.SCOPES, (scope) =>
      Effect.map(settingsFile(scope), (file) => [scope, file] as const)
    )
    const kinds = Either.match(root, {
      onLeft: (error) => Effect.fail(error),
      onRight: (settings) =>
        Effect.flatMap(Workers.Workers, (workers) => workers.checkCommands).pipe(
          Effect.provide(Live.workersLayer(settings))
        )
    })
    const path = Option.getOrElse(yield* envVar("PATH"), () => "")
    const report = yield* Doctor.report({ root, hookFiles, kinds, path })
    yield* print(report, {
      pretty: args.pretty,
      exit: report.ok ? ExitCode.ok : ExitCode.error,
      render: (r) =>
        r.checks.map((c) => `${c.ok ? green("✓") : red("✗")} ${bold(pad(c.name, 16))} ${c.detail}`).join("\n")
    })
  })
).pipe(
  // The supervisor's liveness (Host, Env and the platform come with main.ts's Processes.live).
  Command.provide(Processes.Processes.Live),
  Command.withDescription("Check the root, the store, tmux and the Claude Code hooks.")
)

export const inboxCommands = [inbox, reply, jump, dismiss, restore, log, hook, hooks, doctor] as const
