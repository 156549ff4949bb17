/**
 * Claude Code settings files as trail edits them (`trail hooks install|uninstall`, `trail
 * doctor`): read and parse, add or remove trail's hook entries (Hooks.ts), and write back without
 * disturbing what the file is: through a chain of symbolic links to its target (the links stay),
 * with the old file's mode (a 0600 file may hold keys), via a temporary file and a rename beside
 * the target, in the old text's layout. A file that cannot be read, is not valid JSON, is not shaped as Claude
 * Code expects, or holds numbers a rewrite would change is refused and left untouched.
 *
 * Errors: {@link ConfigError} naming the file (`key` is `hooks` for a shape problem).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { ConfigError } from "@trail/domain"
import { Effect, Option } from "effect"
import * as Hooks from "./Hooks.js"

/** Where hooks go: `user` (~/.claude), `project` (committed, shared), `local` (this checkout, not committed). */
export type Scope = "user" | "project" | "local"

/** Every scope, in the order `trail doctor` reports them. */
export const SCOPES: ReadonlyArray<Scope> = ["project", "local", "user"]

/**
 * The settings file of `scope`: `<userDir>/settings.json` for `user` (userDir is
 * `$CLAUDE_CONFIG_DIR`, else `~/.claude`), `<root>/.claude/settings.json` for `project`,
 * `<root>/.claude/settings.local.json` for `local`.
 */
export const fileOf = (scope: Scope, dirs: { readonly root: string; readonly userDir: string }) =>
  Effect.map(Path.Path, (path) =>
    scope === "user"
      ? path.join(dirs.userDir, "settings.json")
      : path.join(dirs.root, ".claude", scope === "local" ? "settings.local.json" : "settings.json")
  )

const settingsError = (file: string, reason: string) => new ConfigError({ file, key: "", value: "", reason })

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** A settings file's text (None: there is no file yet) and its parsed content (`{}` for none). */
export interface Read {
  readonly text: Option.Option<string>
  readonly settings: unknown
}

/**
 * Reads and parses `file` (a missing file, or a link to nothing yet, reads as none). Fails when
 * it cannot be read, naming the OS reason (a folder, no permission), or is not valid JSON.
 */
export const read = (file: string): Effect.Effect<Read, ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const cannotRead = (error: unknown) => settingsError(file, `cannot be read: ${messageOf(error)}`)
    const exists = yield* Effect.mapError(fs.exists(file), cannotRead)
    if (!exists) return { text: Option.none(), settings: {} }
    const text = yield* Effect.mapError(fs.readFileString(file), cannotRead)
    const settings = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (error) => settingsError(file, `is not valid JSON (left untouched): ${messageOf(error)}`)
    })
    return { text: Option.some(text), settings }
  })

/** Symbolic links followed at most (the kernel's own limit, ELOOP). */
const MAX_LINKS = 40

/**
 * The file a write to `file` must replace: `file` itself, or the final target of the chain of
 * symbolic links it starts, even when that target does not exist yet (a dangling link stays a
 * link). Fails on a loop.
 */
const linkTarget = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    let current = file
    for (let i = 0; i < MAX_LINKS; i++) {
      // Not a link (or nothing there): this is the file to replace.
      const link = yield* Effect.option(fs.readLink(current))
      if (Option.isNone(link)) return current
      current = path.resolve(path.dirname(current), link.value)
    }
    return yield* settingsError(file, `cannot be written: too many levels of symbolic links`)
  })

/** Mode of a file created where there was none. */
const NEW_FILE_MODE = 0o644

/** Writes `settings` over `file` as the module docstring says; `original` is the text read before. */
export const write = (
  file: string,
  original: Option.Option<string>,
  settings: unknown
): Effect.Effect<void, ConfigError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const inexact = Option.match(original, { onNone: () => [], onSome: Hooks.inexactNumbers })
    if (inexact.length > 0)
      return yield* settingsError(
        file,
        `holds number(s) that a rewrite would change (${inexact.slice(0, 3).join(", ")}); left untouched: edit it by hand or write them as strings`
      )
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const target = yield* linkTarget(file)
    yield* Effect.gen(function* () {
      const mode = yield* fs.stat(target).pipe(
        Effect.map((info) => info.mode & 0o7777),
        Effect.catchTag("SystemError", (error) =>
          error.reason === "NotFound" ? Effect.succeed(NEW_FILE_MODE) : Effect.fail(error)
        )
      )
      yield* fs.makeDirectory(path.dirname(target), { recursive: true })
      // Beside the target, so the rename is atomic; named by pid, so two writers never share one.
      const tmp = `${target}.${process.pid}.tmp`
      yield* fs.writeFileString(tmp, Hooks.formatSettings(settings, Option.getOrNull(original)), { mode })
      // The umask may have narrowed the mode given at creation.
      yield* fs.chmod(tmp, mode)
      yield* fs.rename(tmp, target)
    }).pipe(Effect.mapError((error) => settingsError(file, `cannot be written: ${error.message}`)))
  })

const shaped = <A>(file: string, edit: () => A) =>
  Effect.try({
    try: edit,
    catch: (error) =>
      error instanceof Hooks.SettingsShapeError
        ? new ConfigError({ file, key: "hooks", value: "", reason: `${error.message} (left untouched)` })
        : settingsError(file, messageOf(error))
  })

/** What `install` did: the file, the events it added or upgraded, every event now installed. */
export interface Installed {
  readonly settings_file: string
  readonly added: ReadonlyArray<Hooks.HookEventName>
  /** Entries an older trail installed differently (an async SessionStart), brought up to date. */
  readonly upgraded: ReadonlyArray<Hooks.HookEventName>
  readonly installed: ReadonlyArray<Hooks.HookEventName>
}

/**
 * Adds trail's hook entry (running `command`) for each of the six events to `file` (created when
 * missing), and for PreCompact with `options.preCompact` (`checkpoint.on_precompact`); idempotent:
 * the file is not written when nothing was added or upgraded.
 */
export const install = (file: string, command: string, options: { readonly preCompact?: boolean } = {}) =>
  Effect.gen(function* () {
    const before = yield* read(file)
    const { settings, added, upgraded } = yield* shaped(file, () =>
      Hooks.installHooks(before.settings, command, options)
    )
    if (added.length > 0 || upgraded.length > 0) yield* write(file, before.text, settings)
    const result: Installed = {
      settings_file: file,
      added,
      upgraded,
      installed: Hooks.installedEvents(settings, options.preCompact === true)
    }
    return result
  })

/** What `uninstall` did: the file and the events whose trail entry it removed. */
export interface Uninstalled {
  readonly settings_file: string
  readonly removed: ReadonlyArray<string>
}

/** Removes exactly the entries trail added to `file`; a missing file is left missing. */
export const uninstall = (file: string) =>
  Effect.gen(function* () {
    const before = yield* read(file)
    if (Option.isNone(before.text)) return { settings_file: file, removed: [] } satisfies Uninstalled
    const { settings, removed } = yield* shaped(file, () => Hooks.uninstallHooks(before.settings))
    if (removed.length > 0) yield* write(file, before.text, settings)
    return { settings_file: file, removed } satisfies Uninstalled
  })

/**
 * The events installed in `file` (none for a missing file), `PreCompact` among them with
 * `withPreCompact`. Fails with the {@link read} error: the file cannot be read (the OS reason) or
 * is not valid JSON.
 */
export const installedIn = (file: string, withPreCompact = false) =>
  Effect.map(read(file), (read) => Hooks.installedEvents(read.settings, withPreCompact))
