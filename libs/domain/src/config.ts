/**
 * The `.trail.toml` schema: every key has a default (SPEC §1), unknown keys are rejected, and a
 * rejected value becomes a {@link ConfigError} naming the dotted key and the value.
 *
 * Parsing TOML text is the caller's job (the scheduler uses `smol-toml`); this module decodes
 * the parsed object so that it depends only on `effect`.
 */
import { Either, ParseResult, Schema } from "effect"
import { ConfigError } from "./errors.js"
import { StaticSignal, Strategy } from "./model.js"

const UnitInterval = Schema.Number.pipe(
  Schema.finite(),
  Schema.between(0, 1, { message: (issue) => `must be between 0 and 1, got ${String(issue.actual)}` })
)

/** Longest lease `lease.ttl_secs` may ask for: 30 days. */
export const MAX_TTL_SECS = 30 * 86_400
const MAX_HALF_LIFE_SECS = 3650 * 86_400

/** A whole number (a count or seconds) in `min..max`, saying the range when it is not. */
const countBetween = (min: number, max: number) =>
  Schema.Number.pipe(
    Schema.filter(
      (n) => (Number.isInteger(n) && n >= min && n <= max) || `must be a whole number from ${min} to ${max}`
    )
  )

const withDefault = <S extends Schema.Schema.Any>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/** `worker.substrate`: tmux when installed, tmux, or plain processes. */
const SubstrateChoice = Schema.Literal("auto", "tmux", "process")

/** One of `schema`'s literals, rejected with all of them named (Schema's own error names each one apart, the first one first). */
const choice = <const L extends readonly [string, ...Array<string>]>(schema: Schema.Literal<L>) =>
  schema.annotations({
    message: () => ({
      message: `must be one of ${schema.literals.map((l) => JSON.stringify(l)).join(", ")}`,
      override: true
    })
  })

export const StrategyConfig = Schema.Struct({
  /** Strategy used when `--strategy` is not given. */
  default: withDefault(choice(Strategy), () => "weighted" as const),
  /** Weight of recency against the static signal in `weighted` (0..1). */
  alpha: withDefault(UnitInterval, () => 0.6),
  /** Staleness (seconds, 1 s … 10 years) at which recency reaches 0.5. */
  half_life_secs: withDefault(
    Schema.Number.pipe(
      Schema.finite({ message: () => "must be a finite number of seconds" }),
      Schema.greaterThanOrEqualTo(1, { message: (issue) => `must be at least 1, got ${String(issue.actual)}` }),
      Schema.lessThanOrEqualTo(MAX_HALF_LIFE_SECS, {
        message: () => `must be at most ${MAX_HALF_LIFE_SECS} (10 years)`
      })
    ),
    () => 604_800
  ),
  /** Seed of the tie-break and of `random` (a safe integer). */
  seed: withDefault(countBetween(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER), () => 42),
  static_signal: withDefault(choice(StaticSignal), () => "file_count" as const),
  /** Weight of recent findings (0 turns outcome feedback off). */
  outcome_weight: withDefault(UnitInterval, () => 0)
})
export type StrategyConfig = typeof StrategyConfig.Type

export const LeaseConfig = Schema.Struct({
  /** Lease time to live in seconds (> 0, at most 30 days). */
  ttl_secs: withDefault(
    Schema.Number.pipe(
      Schema.finite({ message: () => "must be a finite number of seconds" }),
      Schema.positive({ message: (issue) => `must be greater than 0, got ${String(issue.actual)}` }),
      Schema.lessThanOrEqualTo(MAX_TTL_SECS, { message: () => `must be at most ${MAX_TTL_SECS} (30 days)` })
    ),
    () => 900
  )
})
export type LeaseConfig = typeof LeaseConfig.Type

/** Most globs in one of `scan.include` / `scan.exclude` (each compiles to a matcher on every walk). */
export const MAX_GLOBS = 10_000

const Globs = Schema.Array(
  Schema.String.pipe(
    Schema.minLength(1, { message: () => "globs must not be empty" }),
    Schema.maxLength(4096, { message: () => "a glob must be at most 4096 characters" })
  )
).pipe(
  Schema.maxItems(MAX_GLOBS, {
    message: (issue) =>
      `holds ${Array.isArray(issue.actual) ? issue.actual.length : "too many"} globs; at most ${MAX_GLOBS} are allowed`
  })
)

export const ScanConfig = Schema.Struct({
  respect_gitignore: withDefault(Schema.Boolean, () => true),
  /** Folders with fewer direct files are not registered. */
  min_files: withDefault(countBetween(0, 1_000_000), () => 1),
  /** When non-empty, only folders matching one of these globs are registered. */
  include: withDefault(Globs, () => []),
  /** Folders matching one of these globs are neither registered nor descended into. */
  exclude: withDefault(Globs, () => [])
})
export type ScanConfig = typeof ScanConfig.Type

const Name = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_.-]+$/, { message: () => "must be letters, digits, '_', '.' or '-'" })
)

/**
 * Where each placeholder's value is in a worker's environment: a shell-string command reads
 * them from there (`"$TRAIL_PROMPT"`), because text spliced into shell source runs as code
 * whatever the quoting (a folder named `$(touch x)` inside `"{prompt}"`).
 */
export const PLACEHOLDER_ENV = {
  prompt: "TRAIL_PROMPT",
  task_file: "TRAIL_TASK_FILE",
  worker: "TRAIL_WORKER_ID",
  root: "TRAIL_ROOT",
  path: "TRAIL_PATH"
} as const

const PLACEHOLDER = /\{(prompt|task_file|worker|root|path)\}/

const isPlaceholder = (name: string | undefined): name is keyof typeof PLACEHOLDER_ENV =>
  name !== undefined && Object.hasOwn(PLACEHOLDER_ENV, name)

/**
 * Programs that read text as shell code: a placeholder handed to one of them (as a `-c` script,
 * a positional `$1`, or after options such as `-o pipefail`) could run a prompt or a folder name
 * as code, and with no `/proc` a shell in a pane's foreground means the agent is gone.
 */
export const SHELLS: ReadonlySet<string> = new Set([
  "sh",
  "bash",
  "dash",
  "zsh",
  "ksh",
  "mksh",
  "ash",
  "busybox",
  "fish",
  "tcsh",
  "csh",
  "nu",
  "elvish",
  "xonsh"
])

const baseName = (arg: string) => arg.slice(arg.lastIndexOf("/") + 1)

/**
 * True when `argv` runs a shell ({@link SHELLS}, by the basename of its program), directly or
 * through `env` (its options and `NAME=value` arguments skipped). `env -S`/`--split-string`
 * re-splits a string into a command line, so it counts as a shell too.
 */
export const runsShell = (argv: ReadonlyArray<string>): boolean => {
  let i = 0
  for (let program = argv[i]; program !== undefined && baseName(program) === "env"; program = argv[i]) {
    i++
    for (let arg = argv[i]; arg !== undefined; arg = argv[++i]) {
      if (arg === "--") {
        i++
        break
      }
      if (/^(-[a-zA-Z0-9]*S|--split-string)/.test(arg)) return true
      if (!arg.startsWith("-") && !arg.includes("=")) break
      // -u NAME, -C DIR, -P PATH take the next argument as their value.
      if (/^(-[a-zA-Z0-9]*[uCP]|--unset|--chdir)$/.test(arg)) i++
    }
  }
  const program = argv[i]
  return program !== undefined && SHELLS.has(baseName(program))
}

/**
 * Why a command template cannot be used, or undefined: a shell string holding a
 * `{placeholder}`, or an argv that runs a shell ({@link runsShell}) with a placeholder in any
 * argument. The message says how to write it instead.
 *
 * Not caught: programs that re-parse an argument as code of their own (`ssh host CMD`,
 * `python -c`, `node -e`); a kind must not hand them a placeholder either.
 */
export const commandTemplateProblem = (command: string | ReadonlyArray<string>): string | undefined => {
  const shellText = typeof command === "string" ? [command] : runsShell(command) ? command : []
  const match = shellText.map((text) => PLACEHOLDER.exec(text)).find((found) => found !== null) ?? null
  if (match === null) return undefined
  const key = match[1]
  if (!isPlaceholder(key)) return undefined
  return (
    `hands {${key}} to a shell, where a prompt or a folder name could run as code; ` +
    `write the command as an argv list that runs the agent itself (["claude", "{${key}}"]) or have the shell ` +
    `read the value from the environment ("$${PLACEHOLDER_ENV[key]}")`
  )
}

/**
 * A kind's or `worker.command`'s program: an argv list whose elements may hold `{prompt}`,
 * `{task_file}`, `{worker}`, `{root}`, or a shell string that takes those from the environment.
 */
export const CommandTemplate = Schema.Union(
  Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(
    Schema.minItems(1, { message: () => "must name a program" })
  ),
  Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }))
).pipe(
  Schema.filter((command) => commandTemplateProblem(command) ?? true, {
    identifier: "CommandTemplate"
  })
)

export const WorkerConfig = Schema.Struct({
  /**
   * The agent program the built-in kinds run: an argv list with `{task_file}`, `{prompt}`,
   * `{worker}`, `{root}` substituted in its elements (e.g. `["claude", "{prompt}"]`), or a shell
   * string that reads them from the environment (`claude "$TRAIL_PROMPT"`).
   */
  command: withDefault(CommandTemplate, () => ["claude", "{prompt}"]),
  /** `tmux` (one window per worker) or `process` (plain child processes); default tmux when installed. */
  substrate: withDefault(choice(SubstrateChoice), () => "auto" as const),
  /** `tmux -L` socket name of trail's tmux server. */
  tmux_socket: withDefault(Name, () => "trail"),
  /** The tmux session holding the workers' windows. */
  session: withDefault(Name, () => "trail-workers"),
  /** Most workers alive at once. */
  max_active: withDefault(countBetween(1, 256), () => 8),
  /** How deep workers may spawn child workers. */
  max_spawn_depth: withDefault(countBetween(0, 16), () => 2),
  /**
   * Seconds a supervised worker's lease lasts; the supervisor renews it every third of that while
   * the worker's process is alive, and marks the worker lost when it expires.
   */
  lease_secs: withDefault(countBetween(3, 86_400), () => 60),
  /** Seconds a worker that finished (done/fail) may keep running before trail stops its program. */
  exit_grace_secs: withDefault(countBetween(0, 3_600), () => 10),
  /** Fleet mode: how many workers may fail on one folder in a sweep before the folder is skipped. */
  max_attempts: withDefault(countBetween(1, 100), () => 2),
  /**
   * Fleet mode: consecutive workers that could not start (command not found, exit 126/127 before
   * any protocol call, no window) after which the fleet stops claiming and exits 1.
   */
  max_start_failures: withDefault(countBetween(1, 100), () => 3),
  /** Seconds a finished worker's tmux window stays open for a look before the supervisor closes it (0: keep). */
  keep_finished_secs: withDefault(countBetween(0, 2_592_000), () => 300)
})
export type WorkerConfig = typeof WorkerConfig.Type

/** Most bytes of a transcript a checkpoint reads by default: 128 MiB (the most recent part is kept). */
export const DEFAULT_MAX_TRANSCRIPT_BYTES = 128 * 1024 * 1024
/** A transcript line longer than this is skipped and noted (bytes). */
export const DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024

/** Seconds an armed checkpoint waits for a session by default: a day. */
export const DEFAULT_ARMED_TTL_SECS = 86_400

export const CheckpointConfig = Schema.Struct({
  /** Days a consumed `--once` checkpoint is kept before `trail gc` purges it. */
  consumed_retention_days: withDefault(countBetween(0, 3650), () => 7),
  /**
   * Seconds a `trail continue` stays armed for the next Claude Code session; a session started
   * later does not get it, and another `continue` may arm (0: until taken or disarmed).
   */
  armed_ttl_secs: withDefault(countBetween(0, 31_536_000), () => DEFAULT_ARMED_TTL_SECS),
  /** Save a checkpoint of a session in Claude Code's `PreCompact` hook (note "before compaction"). */
  on_precompact: withDefault(Schema.Boolean, () => false),
  /**
   * `--summarize`: the program the bundle is piped to (stdin); its stdout becomes the `## Summary`
   * section. Unset: `--summarize` is refused.
   */
  summarize_command: Schema.optionalWith(CommandTemplate, { exact: true }),
  /** Bytes of a transcript read at most (the most recent part kept; the rest is a noted problem). */
  max_transcript_bytes: withDefault(countBetween(1024, Number.MAX_SAFE_INTEGER), () => DEFAULT_MAX_TRANSCRIPT_BYTES),
  /** Longest transcript line read (bytes); a longer line is skipped and noted. */
  max_line_bytes: withDefault(countBetween(1024, 256 * 1024 * 1024), () => DEFAULT_MAX_LINE_BYTES),
  /** Most artifacts of one kind in a bundle (the most recent kept). */
  max_artifacts_per_kind: withDefault(countBetween(1, 100_000), () => 50),
  /** Output lines a `command` artifact keeps from each end of the output. */
  output_lines: withDefault(countBetween(0, 1000), () => 5)
})
export type CheckpointConfig = typeof CheckpointConfig.Type

export const HistoryConfig = Schema.Struct({
  /**
   * A task's most recent sweeps whose work items `trail gc` keeps (a whole number ≥ 1); older
   * complete sweeps lose their items (their counters and visits stay).
   */
  keep_sweeps: withDefault(countBetween(1, 1_000_000), () => 10)
})
export type HistoryConfig = typeof HistoryConfig.Type

const section = <A, I>(struct: Schema.Schema<A, I>) => withDefault(struct, () => Schema.decodeUnknownSync(struct)({}))

export const TrailConfig = Schema.Struct({
  strategy: section(StrategyConfig),
  lease: section(LeaseConfig),
  scan: section(ScanConfig),
  worker: section(WorkerConfig),
  checkpoint: section(CheckpointConfig),
  history: section(HistoryConfig)
})
export type TrailConfig = typeof TrailConfig.Type

/**
 * The configuration a missing `.trail.toml` means: what {@link TrailConfig} decodes `{}` to (a
 * test holds the two equal). Written out rather than decoded when the module loads, which every
 * `trail` start would pay for.
 */
export const defaultConfig: TrailConfig = {
  strategy: {
    default: "weighted",
    alpha: 0.6,
    half_life_secs: 604_800,
    seed: 42,
    static_signal: "file_count",
    outcome_weight: 0
  },
  lease: { ttl_secs: 900 },
  scan: { respect_gitignore: true, min_files: 1, include: [], exclude: [] },
  worker: {
    command: ["claude", "{prompt}"],
    substrate: "auto",
    tmux_socket: "trail",
    session: "trail-workers",
    max_active: 8,
    max_spawn_depth: 2,
    lease_secs: 60,
    exit_grace_secs: 10,
    max_attempts: 2,
    max_start_failures: 3,
    keep_finished_secs: 300
  },
  checkpoint: {
    consumed_retention_days: 7,
    armed_ttl_secs: DEFAULT_ARMED_TTL_SECS,
    on_precompact: false,
    max_transcript_bytes: DEFAULT_MAX_TRANSCRIPT_BYTES,
    max_line_bytes: DEFAULT_MAX_LINE_BYTES,
    max_artifacts_per_kind: 50,
    output_lines: 5
  },
  history: { keep_sweeps: 10 }
}

const valueAt = (raw: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let current = raw
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined
    current = Reflect.get(current, key)
  }
  return current
}

const showValue = (value: unknown): string => {
  if (value === undefined) return "(missing)"
  if (Array.isArray(value) && value.length > 8) return `[${value.length} items]`
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > 200 ? `${text.slice(0, 199)}…` : text
}

/**
 * Decodes a parsed `.trail.toml` object. Fails with the first rejected key as a
 * {@link ConfigError} (`key` dotted, e.g. `lease.ttl_secs`; `value` JSON-rendered).
 */
export const decodeConfig = (raw: unknown, file: string): Either.Either<TrailConfig, ConfigError> =>
  Schema.decodeUnknownEither(TrailConfig, { onExcessProperty: "error", errors: "first" })(raw).pipe(
    Either.mapLeft((error) => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      if (issue === undefined) return new ConfigError({ file, key: "", value: "", reason: error.message })
      const key = issue.path.map(String).join(".")
      const reason = issue._tag === "Unexpected" ? "is not a known setting" : issue.message
      return new ConfigError({ file, key, value: showValue(valueAt(raw, issue.path)), reason })
    })
  )

/** The commented example written by `trail init` as `.trail.toml.example`. */
export const exampleConfig = `# trail configuration. Copy to .trail.toml and commit it; every key is optional.

[strategy]
# weighted | round-robin | random
default = "weighted"
# weight of staleness against the static signal in "weighted" (0..1)
alpha = 0.6
# staleness in seconds at which a folder's recency reaches one half
half_life_secs = 604800
# seed for the tie-break and for "random"
seed = 42
# file_count | bytes | churn (commits touching the folder in the last 90 days)
static_signal = "file_count"
# 0..1; > 0 surfaces folders that recently reported findings (done --found N) earlier
outcome_weight = 0

[lease]
# seconds an agent holds a folder before it returns to the pool (at most 2592000: 30 days)
ttl_secs = 900

[scan]
# honour .gitignore / .ignore files at every level (hidden directories are always skipped)
respect_gitignore = true
# folders with fewer direct files are not registered
min_files = 1
# when non-empty, only folders matching one of these globs are registered
include = []
# folders matching these globs are skipped with everything below them (at most 10000 per list)
exclude = []

[worker]
# the agent program workers run: an argv list whose {prompt}, {task_file}, {worker} and {root}
# are filled in (e.g. ["codex", "exec", "{prompt}"]), or a shell string that reads them from
# the environment ("$TRAIL_PROMPT", "$TRAIL_TASK_FILE", "$TRAIL_WORKER_ID", "$TRAIL_ROOT")
command = ["claude", "{prompt}"]
# auto (tmux when installed) | tmux | process
substrate = "auto"
# trail's own tmux server (tmux -L) and the session that holds one window per worker
tmux_socket = "trail"
session = "trail-workers"
max_active = 8
max_spawn_depth = 2
# seconds a supervised worker's lease lasts (renewed every third of it while its process lives)
lease_secs = 60
# seconds a finished worker may keep running before trail stops its program
exit_grace_secs = 10
# fleet mode: failed workers per folder and sweep before the folder is skipped
max_attempts = 2
# fleet mode: consecutive workers that cannot start before the fleet stops (exit 1)
max_start_failures = 3
# seconds a finished worker's window stays open before the supervisor closes it (0: keep)
keep_finished_secs = 300

[checkpoint]
# days a consumed --once checkpoint is kept before \`trail gc\` purges it
consumed_retention_days = 7
# seconds \`trail continue\` waits for the next session; a later one does not get it (0: no limit)
armed_ttl_secs = 86400
# save a checkpoint of a session before Claude Code compacts it (PreCompact hook)
on_precompact = false
# --summarize pipes the bundle to this program and keeps its output as "## Summary"
# summarize_command = ["claude", "-p", "Summarize this checkpoint for the next session"]
# caps on what a checkpoint reads: transcript bytes (the most recent part is kept), the longest
# transcript line, artifacts of one kind, and output lines kept from each end of a command's output
max_transcript_bytes = 134217728
max_line_bytes = 4194304
max_artifacts_per_kind = 50
output_lines = 5

[history]
# a task's most recent sweeps whose work items \`trail gc\` keeps (older finished sweeps keep
# their counters and visits, not their items)
keep_sweeps = 10
`
