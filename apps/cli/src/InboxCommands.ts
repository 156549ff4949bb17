/**
 * Attention routing (SPEC §3): `trail inbox` and acting on its items (`reply`, `jump`, `skip`,
 * `dismiss`, `restore`, `log`), Claude Code hooks (`trail hook claude`, `trail hooks
 * install|uninstall`) and `trail doctor`.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { homedir, hostname } from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { ConfigError, isTrailError, type ReviewItem, type TrailEvent, UsageError, type WorkerId } from "@trail/domain"
import { Project } from "@trail/scheduler"
import { Live } from "@trail/supervisor"
import { Database, Events, Migrations } from "@trail/store"
import { Hooks, Inbox, Kinds, Substrate, Workers } from "@trail/workers"
import { Cause, Clock, Effect, Either, Exit, Option, Runtime } from "effect"
import { explicitRoot, nonEmpty, pretty, print } from "./Common.js"
import { ExitCode } from "./Output.js"
import { bold, cyan, dim, green, red, safeData, safeText, time, yellow } from "./Pretty.js"
import type { TuiApi } from "./tui/InboxTui.js"
import { runHook } from "./hook.js"
import { rootSettings } from "./WorkerCommands.js"

/** Runs `f` with the Inbox of the root. */
const withInbox = <A, E, R>(f: (inbox: Inbox.InboxShape) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(rootSettings, (settings) =>
    Effect.flatMap(Inbox.Inbox, f).pipe(Effect.provide(Live.inboxLayer(settings)))
  )

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
      const [first] = yield* inbox.items
      const now = yield* Clock.currentTimeMillis
      yield* print(first ?? null, {
        pretty: args.pretty,
        render: (item) => (item === null ? dim("Nothing needs you.") : renderCard(item, now))
      })
    })
  )
).pipe(Command.withDescription("The one item that needs you most (null when none)."))

const inbox = Command.make(
  "inbox",
  {
    rebuild: Options.boolean("rebuild").pipe(
      Options.withDescription("Fold the whole event log again from nothing (the same result as the live inbox).")
    ),
    tui: Options.boolean("tui").pipe(Options.withDescription("The interactive inbox (needs a terminal).")),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      if (args.tui) return yield* interactiveInbox
      yield* withInbox((inbox) =>
        Effect.gen(function* () {
          if (args.rebuild) yield* inbox.rebuild
          yield* inbox.reconcile
          const items = yield* inbox.items
          const now = yield* Clock.currentTimeMillis
          yield* print(items, { pretty: args.pretty, render: (items) => renderInbox(items, now) })
        })
      )
    })
).pipe(
  Command.withDescription("What needs you, most stuck first: workers waiting or failed, sessions blocked or done."),
  Command.withSubcommands([inboxNext])
)

/**
 * The bundled TUI module (dist/tui.mjs, next to the CLI bundle). bin/trail.cjs runs the bundle in
 * a vm.Script, where `import()` is not available without an experimental flag, so it lends its
 * own `import` as `globalThis.__trailImport`.
 */
const tuiModule = () => {
  const url = pathToFileURL(path.join(__dirname, "tui.mjs")).href
  const lent = (globalThis as { __trailImport?: (url: string) => Promise<unknown> }).__trailImport
  return (lent !== undefined ? lent(url) : import(url)) as Promise<typeof import("./tui/InboxTui.js")>
}

/** What the TUI's actions need: the inbox, the workers, and what `jump` needs. */
type TuiContext = Inbox.Inbox | Workers.Workers | Effect.Effect.Context<ReturnType<typeof jumpTo>>

/** `trail inbox --tui`: the TUI over this root's Inbox and Workers. */
const interactiveInbox = Effect.gen(function* () {
  if (process.stdin.isTTY !== true || process.stdout.isTTY !== true)
    return yield* new UsageError({ message: "--tui needs a terminal; `trail inbox` prints the same items as JSON" })
  const settings = yield* rootSettings
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
    const api: TuiApi = {
      load: () => run(inbox.items),
      // Items and action results are data (hook messages, folder names): shown, never obeyed.
      card: (item, selected) => renderCard(safeData(item as ReviewItem), clock.unsafeCurrentTimeMillis(), selected),
      act: (action, item, text) =>
        run(
          Effect.gen(function* () {
            const worker = item.subject.id as WorkerId
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
                const stat = yield* workers.promote(worker)
                return `promoted ${stat.files} file(s) of ${worker}`
              }
              case "discard":
                yield* workers.discard(worker)
                return `discarded the change set of ${worker}`
              case "respawn":
                return `respawned as ${(yield* workers.respawn(worker)).id}`
              case "show": {
                if (item.subject.type !== "worker") return item.headline
                const shown = yield* workers.get(worker)
                return `${shown.id} ${shown.state}: ${shown.result?.summary ?? shown.reason ?? shown.text}`
              }
              default: {
                const jumped = yield* jumpTo(item.id)
                return jumped.jumped ? `jumped to ${jumped.target}` : `outside tmux: ${jumped.command!.join(" ")}`
              }
            }
          })
        ).then(safeText),
      watch: (onChange) => {
        let timer: ReturnType<typeof setTimeout> | undefined
        const watcher = fs.watch(settings.project.stateDir, { persistent: false }, (_event, file) => {
          if (file !== null && !file.startsWith("state.db")) return
          clearTimeout(timer)
          timer = setTimeout(onChange, 50)
        })
        return () => {
          clearTimeout(timer)
          watcher.close()
        }
      }
    }
    // A person at a terminal asked for the TUI: Ink, believing itself in CI ($CI set, as in some
    // shells and in test runners), would draw only its last frame.
    delete process.env["CI"]
    delete process.env["CONTINUOUS_INTEGRATION"]
    const tui = yield* Effect.promise(tuiModule)
    yield* Effect.promise(() => tui.runTui(api))
  }).pipe(Effect.provide(Live.inboxLayer(settings)))
})

/** Reads all of stdin when it is not a terminal (the text of `reply` when none is given). */
const readStdin = Effect.promise(
  () =>
    new Promise<string>((resolve) => {
      if (process.stdin.isTTY === true) return resolve("")
      let data = ""
      process.stdin.setEncoding("utf8")
      process.stdin.on("data", (chunk) => (data += chunk))
      process.stdin.on("end", () => resolve(data))
      process.stdin.on("error", () => resolve(data))
    })
)

const reply = Command.make(
  "reply",
  {
    item: itemArg,
    text: Args.text({ name: "text" }).pipe(Args.repeated, Args.withDescription("What to type (default: stdin).")),
    action: Options.choice("action", Inbox.PERMISSION_ACTIONS).pipe(
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
      const text = args.text.length > 0 ? args.text.join(" ") : (yield* readStdin).replace(/\n$/, "")
      if (text === "") return yield* new UsageError({ message: "nothing to reply: give TEXT or pipe it on stdin" })
      const item = yield* withInbox((inbox) => inbox.reply(args.item, text))
      yield* printItem(item, args.pretty)
    })
).pipe(
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
  ).pipe(Command.withDescription(description))

/** `trail skip ITEM` (the `skip` command also skips folders: see Cli.ts). */
export const skipItem = (item: string, prettyFlag: boolean) =>
  Effect.flatMap(
    withInbox((inbox) => inbox.skip(item)),
    (skipped) => printItem(skipped, prettyFlag)
  )
const dismiss = simpleAction("dismiss", "Hide the item (trail restore brings it back).")
const restore = simpleAction("restore", "Bring a dismissed or skipped item back.")

/**
 * Switches the tmux client this command runs in to the item's pane (switch-client, select-window,
 * select-pane) when it runs inside that tmux server; otherwise returns the command that attaches.
 */
const jumpTo = (ref: string) =>
  Effect.gen(function* () {
    const settings = yield* rootSettings
    const item = yield* withInbox((inbox) => inbox.find(ref))
    let server: ReadonlyArray<string>
    let target: string
    if (item.subject.type === "worker") {
      const id = item.subject.id as WorkerId
      const worker = yield* withInbox(() => Effect.flatMap(Workers.Workers, (workers) => workers.get(id)))
      server = ["-L", settings.config.worker.tmux_socket]
      target = worker.window ?? `${settings.config.worker.session}:${id}`
    } else {
      const { pane, socket } = yield* withInbox((inbox) => inbox.paneOf(item.subject.id))
      server = ["-S", socket]
      target = pane
    }
    const here = Option.map(nonEmpty(process.env["TMUX"]), (tmux) => tmux.split(",")[0]!)
    const sameServer =
      Option.isSome(here) && (server[0] === "-S" ? here.value === server[1] : path.basename(here.value) === server[1])
    if (!sameServer)
      return { item: item.id, jumped: false, target, command: ["tmux", ...server, "attach-session", "-t", target] }
    for (const command of [
      ["switch-client", "-t", target],
      ["select-window", "-t", target],
      ["select-pane", "-t", target]
    ]) {
      const result = spawnSync("tmux", [...server, ...command], { encoding: "utf8" })
      if (result.status !== 0)
        return yield* new UsageError({ message: `tmux ${command[0]} failed: ${result.stderr.trim()}` })
    }
    return { item: item.id, jumped: true, target, command: null }
  })

const jump = Command.make("jump", { item: itemArg }, (args) =>
  Effect.flatMap(jumpTo(args.item), (result) => print(result, { pretty: false, render: () => "" }))
).pipe(Command.withDescription("Switch your tmux client to the item's pane (prints the attach command outside tmux)."))

const log = Command.make(
  "log",
  {
    worker: Options.text("worker").pipe(Options.optional, Options.withDescription("Only this worker.")),
    session: Options.text("session").pipe(Options.optional, Options.withDescription("Only this session.")),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      if (Option.isSome(args.worker) && Option.isSome(args.session))
        return yield* new UsageError({ message: "--worker and --session exclude each other" })
      const subject = Option.isSome(args.worker)
        ? { type: "worker" as const, id: args.worker.value }
        : Option.isSome(args.session)
          ? { type: "session" as const, id: args.session.value }
          : undefined
      const events = yield* withInbox((inbox) => inbox.log(subject))
      // One episode per subject, in the order they started.
      const episodes = new Map<string, { subject: TrailEvent["subject"]; events: Array<TrailEvent> }>()
      for (const event of events) {
        const key = `${event.subject.type}:${event.subject.id}`
        const episode = episodes.get(key) ?? { subject: event.subject, events: [] }
        episode.events.push(event)
        episodes.set(key, episode)
      }
      const groups = [...episodes.values()].map((e) => ({ subject: e.subject, events: e.events }))
      yield* print(groups, {
        pretty: args.pretty,
        render: (groups) =>
          groups
            .map((g) =>
              [
                bold(
                  `${g.subject.type === "worker" ? "Worker" : "Session"} ${g.subject.id} · ${g.events.length} event(s)`
                ),
                ...g.events.map(
                  (e) =>
                    `   ${e.type.padEnd(20)} ${dim(time(e.at))}  ${JSON.stringify(e.data).slice(0, 80)}  ${dim(`#${e.id}`)}`
                )
              ].join("\n")
            )
            .join("\n\n")
      })
    })
).pipe(Command.withDescription("The forensic timeline: every event, grouped by worker and session."))

// ---------------------------------------------------------------------------------------------
// hooks

const hookClaude = Command.make("claude", {}, () =>
  // bin/trail.cjs runs hook.ts directly for exactly `trail hook claude`; this is the same code
  // for the other ways in (the unbundled CLI, `trail --root R hook claude`).
  Effect.promise(runHook)
).pipe(
  Command.withDescription(
    "(Claude Code hook) Read one hook payload from stdin and record it; prints nothing, always exits 0."
  )
)

const hook = Command.make("hook").pipe(
  Command.withDescription("Entry points for agents' hooks."),
  Command.withSubcommands([hookClaude])
)

/** Where hooks go: `user` (~/.claude), `project` (committed, shared), `local` (this checkout, not committed). */
type SettingsScope = "user" | "project" | "local"

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
  return Effect.succeed<SettingsScope>(chosen[0] ?? "project")
}

const settingsFile = (where: SettingsScope) =>
  Effect.gen(function* () {
    if (where === "user") {
      const dir = Option.getOrElse(nonEmpty(process.env["CLAUDE_CONFIG_DIR"]), () => path.join(homedir(), ".claude"))
      return path.join(dir, "settings.json")
    }
    const explicit = yield* explicitRoot
    const found = yield* Project.findRoot({ explicit, cwd: process.cwd() }).pipe(Effect.option)
    const root = Option.match(found, { onNone: () => process.cwd(), onSome: (p) => p.root })
    return path.join(root, ".claude", where === "local" ? "settings.local.json" : "settings.json")
  })

const settingsError = (file: string, reason: string) => new ConfigError({ file, key: "", value: "", reason })

/** A settings file's text (null: none yet) and its parsed content. */
const readSettings = (file: string) =>
  Effect.try({
    try: () => {
      const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null
      return { text, settings: text === null ? ({} as unknown) : (JSON.parse(text) as unknown) }
    },
    catch: (error) =>
      settingsError(
        file,
        `is not valid JSON (left untouched): ${error instanceof Error ? error.message : String(error)}`
      )
  })

/** Symbolic links followed at most (the kernel's own limit, ELOOP). */
const MAX_LINKS = 40

/**
 * The file a write to `file` must replace: `file` itself, or the final target of the chain of
 * symbolic links it starts, even when that target does not exist yet (a dangling link stays a
 * link). Throws on a loop.
 */
const linkTarget = (file: string): string => {
  let current = file
  for (let i = 0; i < MAX_LINKS; i++) {
    const stat = fs.lstatSync(current, { throwIfNoEntry: false })
    if (stat === undefined || !stat.isSymbolicLink()) return current
    current = path.resolve(path.dirname(current), fs.readlinkSync(current))
  }
  throw new Error(`too many levels of symbolic links from ${file}`)
}

/**
 * Writes `settings` over `file` in the layout of its old text: through a symlink to its target
 * (the link stays), with the old file's mode (a 0600 file may hold keys), via a temporary file
 * and a rename beside the target. A file whose numbers JSON would not give back exactly is
 * refused (left untouched).
 */
const writeSettings = (file: string, original: string | null, settings: unknown) =>
  Effect.try({
    try: () => {
      const inexact = original === null ? [] : Hooks.inexactNumbers(original)
      if (inexact.length > 0)
        return settingsError(
          file,
          `holds number(s) that a rewrite would change (${inexact.slice(0, 3).join(", ")}); left untouched: edit it by hand or write them as strings`
        )
      const target = linkTarget(file)
      const mode = fs.existsSync(target) ? fs.statSync(target).mode & 0o7777 : 0o644
      fs.mkdirSync(path.dirname(target), { recursive: true })
      const tmp = `${target}.${process.pid}.tmp`
      fs.writeFileSync(tmp, Hooks.formatSettings(settings, original), { mode })
      fs.chmodSync(tmp, mode)
      fs.renameSync(tmp, target)
      return null
    },
    catch: (error) =>
      settingsError(file, `cannot be written: ${error instanceof Error ? error.message : String(error)}`)
  }).pipe(Effect.flatMap((refused) => (refused === null ? Effect.void : Effect.fail(refused))))

const shapeError = (file: string) => (error: unknown) =>
  error instanceof Hooks.SettingsShapeError
    ? new ConfigError({ file, key: "hooks", value: "", reason: `${error.message} (left untouched)` })
    : new ConfigError({ file, key: "", value: "", reason: String(error) })

/**
 * The command Claude Code runs. Project settings are committed and shared, so they name `trail`
 * on PATH (no path of this checkout); user and local settings name this trail by absolute path.
 */
const hookCommand = (where: SettingsScope) => {
  if (where === "project") return "trail hook claude"
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)
  return `${quote(process.execPath)} ${quote(process.argv[1] ?? "trail")} hook claude`
}

const hooksInstall = Command.make("install", { ...scope, pretty }, (args) =>
  Effect.gen(function* () {
    const where = yield* scopeOf(args)
    const file = yield* settingsFile(where)
    const before = yield* readSettings(file)
    const { settings, added } = yield* Effect.try({
      try: () => Hooks.installHooks(before.settings, hookCommand(where)),
      catch: shapeError(file)
    })
    if (added.length > 0) yield* writeSettings(file, before.text, settings)
    yield* print(
      { settings_file: file, added, installed: Hooks.installedEvents(settings) },
      {
        pretty: args.pretty,
        render: (r) =>
          `${r.settings_file}: ${r.added.length === 0 ? "already installed" : `added ${r.added.join(", ")}`}`
      }
    )
  })
).pipe(Command.withDescription("Add trail's six Claude Code hooks to settings.json (idempotent; other hooks kept)."))

const hooksUninstall = Command.make("uninstall", { ...scope, pretty }, (args) =>
  Effect.gen(function* () {
    const file = yield* settingsFile(yield* scopeOf(args))
    if (!fs.existsSync(file))
      return yield* print(
        { settings_file: file, removed: [] },
        { pretty: args.pretty, render: () => `${file}: nothing to remove` }
      )
    const before = yield* readSettings(file)
    const { settings, removed } = yield* Effect.try({
      try: () => Hooks.uninstallHooks(before.settings),
      catch: shapeError(file)
    })
    if (removed.length > 0) yield* writeSettings(file, before.text, settings)
    yield* print(
      { settings_file: file, removed },
      {
        pretty: args.pretty,
        render: (r) =>
          `${r.settings_file}: ${r.removed.length === 0 ? "nothing to remove" : `removed ${r.removed.join(", ")}`}`
      }
    )
  })
).pipe(Command.withDescription("Remove exactly the hook entries trail added."))

const hooks = Command.make("hooks").pipe(
  Command.withDescription("Install or remove trail's Claude Code hooks."),
  Command.withSubcommands([hooksInstall, hooksUninstall])
)

// ---------------------------------------------------------------------------------------------
// doctor

interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

const doctor = Command.make("doctor", { pretty }, (args) =>
  Effect.gen(function* () {
    const checks: Array<Check> = []
    const settings = yield* rootSettings.pipe(Effect.either)
    if (Either.isLeft(settings)) {
      checks.push({ name: "root", ok: false, detail: settings.left.message })
    } else {
      const { project, config } = settings.right
      checks.push({ name: "root", ok: true, detail: project.root })
      const store = yield* Effect.flatMap(Database.Database, (database) =>
        Effect.zipRight(
          Migrations.migrate,
          database.read((db) => ({
            check: String(db.pluck("PRAGMA quick_check")),
            version: Number(db.pluck("PRAGMA user_version")),
            events: Events.latestId(db),
            supervisor: db.get("SELECT pid, host FROM supervisor WHERE id = 1") as
              { pid: number; host: string } | undefined
          }))
        )
      ).pipe(Effect.provide(Database.layer({ filename: project.databaseFile })), Effect.either)
      if (Either.isLeft(store)) checks.push({ name: "store", ok: false, detail: store.left.message })
      else {
        const s = store.right
        checks.push({
          name: "store",
          ok: s.check === "ok" && s.version === Migrations.LATEST_MIGRATION,
          detail: `${project.databaseFile}: integrity ${s.check}, schema ${s.version}/${Migrations.LATEST_MIGRATION}, ${s.events} event(s)`
        })
        const alive =
          s.supervisor !== undefined && (s.supervisor.host !== hostname() || Substrate.isAlive(s.supervisor.pid))
        checks.push({
          name: "supervisor",
          ok: true,
          detail: alive
            ? `running (pid ${s.supervisor!.pid} on ${s.supervisor!.host})`
            : "not running (workers are not supervised; `trail supervise`)"
        })
      }
      const tmux = spawnSync("tmux", ["-V"], { encoding: "utf8" })
      const hasTmux = tmux.status === 0
      checks.push({
        name: "tmux",
        ok: hasTmux || config.worker.substrate === "process",
        detail: hasTmux
          ? `${tmux.stdout.trim()}; workers on tmux -L ${config.worker.tmux_socket}`
          : config.worker.substrate === "tmux"
            ? 'not installed, and worker.substrate = "tmux": workers cannot start'
            : "not installed: workers run as plain processes; sessions cannot be replied to"
      })
      // Every kind's trust and agent program (looked up on PATH as a worker's would be), the trust
      // of .trail.toml's worker.command, and every kind file that did not load.
      const commands = yield* Effect.flatMap(Workers.Workers, (workers) => workers.checkCommands).pipe(
        Effect.provide(Live.workersLayer(settings.right)),
        Effect.either
      )
      if (Either.isLeft(commands))
        checks.push({ name: "kinds", ok: false, detail: `cannot be checked: ${commands.left.message}` })
      else {
        const { command, kinds, problems } = commands.right
        const runnable = Kinds.isRunnable(command.trust)
        checks.push({
          name: Kinds.WORKER_COMMAND,
          ok: runnable,
          detail:
            command.trust === "builtin"
              ? `trail's default (${command.command.join(" ")})`
              : runnable
                ? `${command.source} sets ${command.command.join(" ")}: trusted`
                : `${command.source} sets ${command.command.join(" ")}: ${command.trust === "changed" ? "changed since it was trusted" : "not trusted"}; review it, then \`trail kinds trust ${Kinds.WORKER_COMMAND}\``
        })
        for (const c of kinds) checks.push({ name: `kind ${c.kind}`, ok: c.ok, detail: `${c.trust}: ${c.detail}` })
        for (const p of problems)
          checks.push({
            name: `kind file ${path.basename(p.file)}`,
            ok: false,
            detail: `${p.file}: ${p.field === "" ? "" : `${p.field}: `}${p.message}`
          })
      }
      for (const where of ["project", "local", "user"] as const) {
        const file = yield* settingsFile(where)
        const installed = yield* readSettings(file).pipe(
          Effect.map((read) => Hooks.installedEvents(read.settings)),
          Effect.orElseSucceed(() => null)
        )
        const flag = where === "project" ? "" : ` --${where}`
        checks.push({
          name: `hooks (${where})`,
          ok: installed !== null,
          detail:
            installed === null
              ? `${file} is not valid JSON`
              : installed.length === Hooks.HOOK_EVENTS.length
                ? `${file}: all ${installed.length} installed (${installed.join(", ")})`
                : installed.length === 0
                  ? `${file}: none installed (\`trail hooks install${flag}\`)`
                  : `${file}: only ${installed.join(", ")} (\`trail hooks install${flag}\` adds the rest)`
        })
      }
      const hooksOk = checks.filter((c) => c.name.startsWith("hooks")).some((c) => c.detail.includes("all "))
      if (!hooksOk)
        checks.push({
          name: "sessions",
          ok: true,
          detail: "no hooks installed: interactive sessions will not reach the inbox"
        })
      const errors = path.join(project.stateDir, "hook-errors.log")
      if (fs.existsSync(errors)) {
        const lines = fs.readFileSync(errors, "utf8").trim().split("\n")
        checks.push({
          name: "hook errors",
          ok: true,
          detail: `${lines.length} dropped payload(s); last: ${lines[lines.length - 1]}`
        })
      }
    }
    const ok = checks.every((c) => c.ok)
    yield* print(
      { ok, checks },
      {
        pretty: args.pretty,
        exit: ok ? ExitCode.ok : ExitCode.error,
        render: (r) =>
          r.checks.map((c) => `${c.ok ? green("✓") : red("✗")} ${bold(c.name.padEnd(16))} ${c.detail}`).join("\n")
      }
    )
  })
).pipe(Command.withDescription("Check the root, the store, tmux and the Claude Code hooks."))

export const inboxCommands = [inbox, reply, jump, dismiss, restore, log, hook, hooks, doctor] as const
