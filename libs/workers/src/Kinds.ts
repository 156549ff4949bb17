/**
 * Worker kinds (SPEC §2): markdown files with YAML frontmatter.
 *
 * ```markdown
 * ---
 * name: reviewer
 * description: Reviews a folder for correctness bugs
 * command: ["claude", "--print", "{prompt}"]    # argv list, or a shell string using "$TRAIL_PROMPT"
 * read_only: true
 * worktree: false
 * max_duration: 20m                             # 90s, 20m, 2h, or seconds as a number
 * can_spawn: false
 * env: { REVIEW_DEPTH: "2" }
 * ---
 * Body: appended to the universal guardrails in the worker's task.md.
 * ```
 *
 * Sources, later overriding earlier: the built-ins (`default`, `scout`, `patcher`), the user's
 * `~/.config/trail/kinds/*.md`, the project's `.trail/kinds/*.md`. A kind without `command`
 * runs `worker.command` from `.trail.toml`. A malformed file is reported by file and field
 * ({@link KindProblem}) and does not stop the others from loading.
 *
 * A project kind (or a user kind named like a built-in) runs only once `trail kinds trust`
 * recorded its SHA-256 in {@link trustFileOf} ({@link KindTrust}); so does a `.trail.toml` that
 * sets its own `worker.command` ({@link ProjectCommand}), since `.trail.toml` is committed too. A
 * shell-string `command` gets its values from the environment (`"$TRAIL_PROMPT"`), never spliced
 * into its text.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { CommandTemplate, defaultConfig, runsShell } from "@trail/domain"
import { Duration, Effect, Either, Option, ParseResult, Schema } from "effect"
import { createHash } from "node:crypto"
import { parse as parseYaml } from "yaml"

const KindName = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9-]*$/, { message: () => "must be lower-case letters, digits and dashes" })
)

/** The longest `max_duration` a kind may set: 7 days, in seconds. */
export const MAX_DURATION_SECS = 7 * 86_400

const toSeconds = (value: number | string): number => {
  if (typeof value === "number") return value
  const part = (unit: string) => Number(new RegExp(`(\\d+)${unit}`).exec(value)?.[1] ?? 0)
  return part("h") * 3600 + part("m") * 60 + part("s")
}

/**
 * `90s`, `20m`, `2h`, `1h30m`, or a number of seconds; more than 0 and at most
 * {@link MAX_DURATION_SECS} (`""`, `"0s"` and `1e308` are refused, not read as 0 or forever).
 */
const DurationField = Schema.Union(
  Schema.String.pipe(
    Schema.pattern(/^(?=.)(\d+h)?(\d+m)?(\d+s)?$/, { message: () => 'must look like "90s", "20m" or "1h30m"' })
  ),
  Schema.Number
).pipe(
  Schema.filter((value) => {
    const seconds = toSeconds(value)
    if (!Number.isFinite(seconds) || seconds <= 0) return "must be more than 0 seconds"
    return seconds <= MAX_DURATION_SECS || `must be at most 7 days (${MAX_DURATION_SECS} seconds)`
  })
)

const Frontmatter = Schema.Struct({
  name: Schema.optional(KindName),
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  command: Schema.optional(CommandTemplate),
  read_only: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  worktree: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  max_duration: Schema.optional(DurationField),
  can_spawn: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) })
})

/** A loaded kind. `command` is an argv template, or None to run `worker.command`. */
export interface Kind {
  readonly name: string
  readonly description: string
  readonly command: Option.Option<ReadonlyArray<string>>
  readonly readOnly: boolean
  readonly worktree: boolean
  readonly maxDuration: Option.Option<Duration.Duration>
  readonly canSpawn: boolean
  readonly env: Readonly<Record<string, string>>
  /** The markdown after the frontmatter. */
  readonly body: string
  /** Where it came from: `builtin` or the file's path. */
  readonly source: string
  /** SHA-256 (hex) of the file's text; "" for a built-in. */
  readonly hash: string
}

/**
 * Whether a loaded kind may run. `builtin`; `own`: a user kind (`~/.config/trail/kinds`) with a
 * name of its own; `trusted`: its hash is recorded by `trail kinds trust`; `untrusted`: a project
 * kind (or a user kind named like a built-in) never trusted; `changed`: trusted, then edited.
 */
export type KindTrust = "builtin" | "own" | "trusted" | "untrusted" | "changed"

/** A kind as loaded from its source, with what a person needs to review it. */
export interface LoadedKind {
  readonly kind: Kind
  readonly origin: "builtin" | "user" | "project"
  readonly trust: KindTrust
  /** It has the name of a built-in kind, which it replaces once trusted. */
  readonly overrides: boolean
}

/**
 * `worker.command`, which every kind without a `command` of its own runs, with its trust:
 * `builtin` when `.trail.toml` leaves it at trail's default (`["claude", "{prompt}"]`), else
 * `trusted`, `untrusted` or `changed` as for a project kind.
 */
export interface ProjectCommand {
  /** The `.trail.toml` that sets it, or `builtin`. */
  readonly source: string
  /** The argv template (a shell string as `sh -c STRING`). */
  readonly command: ReadonlyArray<string>
  /** SHA-256 (hex) of the setting as JSON (other settings of the file do not count); "" for the default. */
  readonly hash: string
  readonly trust: KindTrust
}

/** The name `trail kinds trust` knows the project's `worker.command` by. */
export const WORKER_COMMAND = "worker.command"

/** True when `trust` lets the kind run. */
export const isRunnable = (trust: KindTrust) => trust === "builtin" || trust === "own" || trust === "trusted"

/** Why a kind file was not loaded. `field` is the frontmatter key, or "" for the file as a whole. */
export interface KindProblem {
  readonly file: string
  readonly field: string
  readonly message: string
}

/** The argv a command template runs: a shell string runs as `sh -c STRING`. */
export const argvOf = (command: string | ReadonlyArray<string>): ReadonlyArray<string> =>
  typeof command === "string" ? ["sh", "-c", command] : command

/** Splits `---\nyaml\n---\nbody`; a file without frontmatter is all body. */
const splitFrontmatter = (text: string): { readonly yaml: string | null; readonly body: string } => {
  const normalised = text.replace(/\r\n/g, "\n")
  if (!normalised.startsWith("---\n")) return { yaml: null, body: normalised.trim() }
  const end = normalised.indexOf("\n---", 4)
  if (end < 0) return { yaml: normalised.slice(4), body: "" }
  return {
    yaml: normalised.slice(4, end),
    body: normalised
      .slice(end + 4)
      .replace(/^[^\n]*\n?/, "")
      .trim()
  }
}

/**
 * Parses one kind file. `defaultName` (the file name without `.md`) is used when the frontmatter
 * has no `name`.
 */
export const parseKind = (text: string, file: string, defaultName: string): Either.Either<Kind, KindProblem> => {
  const { yaml, body } = splitFrontmatter(text)
  let raw: unknown = {}
  if (yaml !== null) {
    try {
      raw = parseYaml(yaml) ?? {}
    } catch (error) {
      return Either.left({
        file,
        field: "",
        message: `frontmatter is not valid YAML: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`
      })
    }
  }
  return Schema.decodeUnknownEither(Frontmatter, { onExcessProperty: "error", errors: "first" })(raw).pipe(
    Either.mapLeft((error): KindProblem => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      return {
        file,
        field: issue?.path.map(String).join(".") ?? "",
        message:
          issue === undefined ? error.message : issue._tag === "Unexpected" ? "is not a known field" : issue.message
      }
    }),
    Either.flatMap((fm) => {
      const name = fm.name ?? defaultName
      if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) {
        return Either.left({
          file,
          field: "name",
          message: `kind name ${JSON.stringify(name)} must be lower-case letters, digits and dashes`
        })
      }
      return Either.right({
        name,
        description: fm.description,
        command: Option.fromNullable(fm.command).pipe(Option.map(argvOf)),
        readOnly: fm.read_only,
        worktree: fm.worktree,
        maxDuration: Option.fromNullable(fm.max_duration).pipe(Option.map((d) => Duration.seconds(toSeconds(d)))),
        canSpawn: fm.can_spawn,
        env: fm.env,
        body,
        source: file,
        hash: file === "builtin" ? "" : createHash("sha256").update(text).digest("hex")
      })
    })
  )
}

const builtin = (text: string, name: string): Kind => Either.getOrThrow(parseKind(text, "builtin", name))

let builtins: ReadonlyArray<Kind> | undefined

/**
 * The kinds every installation has. Their agent program is `worker.command`. Parsed on first
 * use (YAML and a Schema decode each), not when trail starts: most commands never need them.
 */
export const builtinKinds = (): ReadonlyArray<Kind> =>
  (builtins ??= [
    builtin(
      `---
description: General-purpose worker with the universal guardrails; may edit files.
---
Work on the task below. Edit files when the task calls for it; keep changes focused.`,
      "default"
    ),
    builtin(
      `---
description: Fast read-only reconnaissance; short time budget.
read_only: true
max_duration: 10m
---
Do not modify any file. Read, search and report what you found with evidence (paths, lines).`,
      "scout"
    ),
    builtin(
      `---
description: Edits in its own git worktree and proposes a change set for review.
worktree: true
can_spawn: true
---
You work in a detached git worktree. Make the change, run what checks you can, and finish with
\`trail worker done\`: the diff is proposed to the human as a change set; nothing is merged for you.`,
      "patcher"
    )
  ])

/** The largest kind file read: 256 KiB. */
const MAX_KIND_BYTES = 256 * 1024

/** Every `*.md` kind in `dir` (a missing folder has none). */
const loadDir = (dir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed((): Array<string> => []))
    const results: Array<Either.Either<Kind, KindProblem>> = []
    for (const name of names.filter((n) => n.endsWith(".md")).sort()) {
      const file = path.join(dir, name)
      // Only a regular file is read: a FIFO or a link to a device would block or never end.
      const text = yield* fs.stat(file).pipe(
        Effect.filterOrFail(
          (info) => info.type === "File" && Number(info.size) <= MAX_KIND_BYTES,
          (info) => ({
            message:
              info.type === "File" ? `is larger than ${MAX_KIND_BYTES} bytes` : `is not a regular file (${info.type})`
          })
        ),
        Effect.flatMap(() => fs.readFileString(file)),
        Effect.either
      )
      results.push(
        Either.isLeft(text)
          ? Either.left({ file, field: "", message: `cannot be read: ${text.left.message}` })
          : parseKind(text.right, file, name.slice(0, -3))
      )
    }
    return results
  })

/**
 * Where `trail kinds trust` records what was reviewed: `trusted-kinds.json` beside the user's
 * kinds folder (`~/.config/trail/`), outside every repository, so that a cloned repository
 * cannot ship a file that trusts its own kinds (`.trail/` may be committed; this file is not
 * in it). Shape: `{ "<absolute kind file or .trail.toml>": "<sha256 hex>" }`.
 */
export const trustFileOf = (userDir: string) =>
  `${userDir.replace(/\/+$/, "").replace(/\/[^/]*$/, "")}/trusted-kinds.json`

const TrustRecord = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.String }))

/** The recorded hashes; a missing or unreadable store trusts nothing. */
const readTrust = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(Effect.orElseSucceed(() => "{}"))
    return Schema.decodeUnknownEither(TrustRecord)(text).pipe(
      Either.getOrElse((): Readonly<Record<string, string>> => ({}))
    )
  })

/**
 * Loads the kinds in precedence order: built-ins, then `userDir`, then `projectDir` (a later
 * kind of the same name replaces an earlier one). Never fails: bad files are returned as problems.
 * `kinds` maps each name to the kind that takes it, whether or not it may run (check
 * {@link LoadedKind.trust} through `loaded` before running it); `loaded` lists every kind found,
 * shadowed ones included, in precedence order.
 */
/** What {@link loadKinds} found. `entries` maps each name to the entry that takes it. */
export interface LoadedKinds {
  readonly kinds: ReadonlyMap<string, Kind>
  readonly entries: ReadonlyMap<string, LoadedKind>
  readonly loaded: ReadonlyArray<LoadedKind>
  readonly problems: ReadonlyArray<KindProblem>
  readonly command: ProjectCommand
}

export const loadKinds = (dirs: {
  readonly userDir: string
  readonly projectDir: string
  /** `.trail.toml`'s path and its `worker.command` (trail's default when absent). */
  readonly command?: { readonly file: string; readonly template: string | ReadonlyArray<string> } | undefined
}) =>
  Effect.gen(function* () {
    const trusted = yield* readTrust(trustFileOf(dirs.userDir))
    const template = dirs.command?.template ?? defaultConfig.worker.command
    const isDefault = JSON.stringify(template) === JSON.stringify(defaultConfig.worker.command)
    const commandHash = isDefault ? "" : createHash("sha256").update(JSON.stringify(template)).digest("hex")
    const commandSource = isDefault || dirs.command === undefined ? "builtin" : dirs.command.file
    const commandRecorded = trusted[commandSource]
    const command: ProjectCommand = {
      source: commandSource,
      command: argvOf(template),
      hash: commandHash,
      trust: isDefault
        ? "builtin"
        : commandRecorded === commandHash
          ? "trusted"
          : commandRecorded === undefined
            ? "untrusted"
            : "changed"
    }
    const builtinNames = new Set(builtinKinds().map((k) => k.name))
    const loaded: Array<LoadedKind> = builtinKinds().map((kind) => ({
      kind,
      origin: "builtin",
      trust: "builtin",
      overrides: false
    }))
    const problems: Array<KindProblem> = []
    for (const [origin, dir] of [
      ["user", dirs.userDir],
      ["project", dirs.projectDir]
    ] as const) {
      for (const result of yield* loadDir(dir)) {
        if (Either.isLeft(result)) {
          problems.push(result.left)
          continue
        }
        const kind = result.right
        const overrides = builtinNames.has(kind.name)
        const recorded = trusted[kind.source]
        const trust: KindTrust =
          origin === "user" && !overrides
            ? "own"
            : recorded === kind.hash
              ? "trusted"
              : recorded === undefined
                ? "untrusted"
                : "changed"
        loaded.push({ kind, origin, trust, overrides })
      }
    }
    const byName = new Map<string, LoadedKind>(loaded.map((entry) => [entry.kind.name, entry]))
    const result: LoadedKinds = {
      kinds: new Map([...byName].map(([name, entry]) => [name, entry.kind])),
      entries: byName,
      loaded,
      problems,
      command
    }
    return result
  })

/** What `trail kinds trust` recorded: a kind's or `worker.command`'s name, file and SHA-256. */
export interface Trusted {
  readonly name: string
  readonly source: string
  readonly hash: string
}

/**
 * Records the current hash of everything among `loaded` and `command` that needs trust
 * (`untrusted` or `changed`) and whose name ({@link WORKER_COMMAND} for the command) is in
 * `names` (all when `names` is empty), in {@link trustFileOf} (written whole through a
 * temporary file, mode 0600). Returns what it trusted.
 */
export const trustKinds = (
  userDir: string,
  loaded: ReadonlyArray<LoadedKind>,
  names: ReadonlyArray<string>,
  command?: ProjectCommand
) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = trustFileOf(userDir)
    const needsTrust = (trust: KindTrust, name: string) =>
      (trust === "untrusted" || trust === "changed") && (names.length === 0 || names.includes(name))
    const picked: Array<Trusted> = loaded
      .filter((entry) => needsTrust(entry.trust, entry.kind.name))
      .map((entry) => ({ name: entry.kind.name, source: entry.kind.source, hash: entry.kind.hash }))
    if (command !== undefined && needsTrust(command.trust, WORKER_COMMAND))
      picked.push({ name: WORKER_COMMAND, source: command.source, hash: command.hash })
    if (picked.length === 0) return picked
    const record = { ...(yield* readTrust(file)) }
    for (const entry of picked) record[entry.source] = entry.hash
    yield* fs.makeDirectory(path.dirname(file), { recursive: true })
    const temporary = `${file}.${process.pid}.tmp`
    yield* fs.writeFileString(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 })
    yield* fs.rename(temporary, file)
    return picked
  })

/** Values for a command template's placeholders. */
export interface CommandValues {
  readonly task_file: string
  readonly prompt: string
  readonly worker: string
  readonly root: string
}

/**
 * Fills `{task_file}`, `{prompt}`, `{worker}` and `{root}` in each argv element. The values are
 * placed verbatim inside their own argument (no shell), so a prompt's quotes or `$(…)` stay text.
 * A command that runs a shell (`sh -c SCRIPT`, `env bash -o pipefail -c …`) is never filled: a
 * shell gets its values from the environment (`"$TRAIL_PROMPT"`), and a template that hands it
 * placeholders is refused when the kind or `.trail.toml` is loaded.
 */
export const substitute = (argv: ReadonlyArray<string>, values: CommandValues): Array<string> =>
  runsShell(argv)
    ? [...argv]
    : argv.map((text) =>
        text.replace(/\{(task_file|prompt|worker|root)\}/g, (_, key: keyof CommandValues) => values[key])
      )
