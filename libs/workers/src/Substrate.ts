/**
 * Where a worker's program runs (SPEC §2): a window of trail's tmux session, or a plain child
 * process whose output goes to `.trail/workers/<id>/output.log` (no attach, no typing).
 *
 * Both start the program through the same tiny `sh` wrapper, which writes the program's exit
 * status to `.trail/workers/<id>/exit` when it ends (normally, or by a signal such as Ctrl-C or
 * trail's SIGTERM). SIGHUP is not caught: when the worker's terminal goes away (its window killed
 * by hand, the tmux server stopped) the wrapper ends and the kernel hangs up its program too, so
 * no agent outlives its window; no status is recorded then, and the supervisor notices the
 * wrapper's pid is gone. That file is trail's death signal: `Processes.waitForExit` waits for
 * it with a file-system watch (inotify here), so a dead worker is noticed at once, by whichever
 * process is watching, even one started after the worker died. tmux's own
 * `pane-died` hook and `pane_dead_status` are not used: tmux 3.3a loses about one pane death in five.
 *
 * Liveness is `kill(pid, 0)` on the wrapper's pid (the pane's pid under tmux): no tmux call
 * (`Processes.isAlive`).
 *
 * {@link layer} is the live layer (tmux through `Tmux`, plain processes through node's
 * `child_process.spawn`: a detached child in its own process group that outlives this process,
 * which @effect/platform's `Command` cannot start); {@link layerTest} runs no program at all: its
 * workers are pids of `Processes.Test`, which the test ends.
 *
 * Errors: {@link SubstrateError} (`missing`: tmux not installed; `failed`: it could not start;
 * `unsupported`: e.g. typing into a plain process; `gone`: its window no longer exists).
 */
import { spawn } from "node:child_process"
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs"
import { SubstrateError, type SubstrateName } from "@trail/domain"
import { Context, Effect, Layer, Option, Predicate } from "effect"
import { EXIT_FILE, isAlive, Processes, TestProcesses, wallClockSleep } from "./Processes.js"
import { Tmux, TmuxError, version } from "./Tmux.js"

/** What a worker's program needs to start. */
export interface LaunchSpec {
  /** The worker id (its window's name). */
  readonly id: string
  /** `.trail/workers/<id>`: holds `exit` and, for plain processes, `output.log`. */
  readonly dir: string
  readonly cwd: string
  /**
   * The worker's whole environment: the spawner's own (`process.env`) plus trail's variables.
   * Under tmux it reaches the program through a 0600 file that the wrapper sources and deletes
   * (never through the tmux server's environment, nor on a command line visible in `ps`).
   */
  readonly env: Readonly<Record<string, string>>
  readonly argv: ReadonlyArray<string>
  /** Who the window belongs to (`<worker id> <root>`), stored as the window option `@trail_worker`. */
  readonly tag: string
}

/**
 * How the substrate finds one worker again. tmux reuses window ids after its server restarts,
 * so a window counts as the worker's only while its `@trail_worker` option equals `tag`.
 */
export interface WorkerRef {
  readonly id: string
  /** tmux's window id (`@12`), or null (plain process, or a window already closed). */
  readonly window: string | null
  readonly tag: string
  /** `.trail/workers/<id>`. */
  readonly dir: string
  /** The wrapper's pid (the pane's pid under tmux). */
  readonly pid: number | null
}

/** A plain process has no terminal: typing or pressing keys into it is `unsupported`. */
const noTerminal = (worker: WorkerRef, what: string) =>
  Effect.fail(
    new SubstrateError({
      substrate: "process",
      reason: "unsupported",
      detail: `worker ${worker.id} runs as a plain process (worker.substrate = "process"): it has no terminal to ${what}`
    })
  )

/** One way of running workers. */
export interface Substrate {
  readonly name: SubstrateName
  /** Starts the program; returns the wrapper's pid and, under tmux, the window's id (`@12`). */
  readonly launch: (
    spec: LaunchSpec
  ) => Effect.Effect<{ readonly pid: number; readonly window: string | null }, SubstrateError>
  /** Types `text` into the worker's input literally, then Enter; `gone` when its window is not the worker's. */
  readonly sendText: (worker: WorkerRef, text: string) => Effect.Effect<void, SubstrateError>
  /** Presses `keys` (tmux key names) in the worker's window; `gone` when the window is not the worker's. */
  readonly pressKeys: (worker: WorkerRef, keys: ReadonlyArray<string>) => Effect.Effect<void, SubstrateError>
  /** The last non-blank lines the worker printed (its pane with scroll-back, or output.log). */
  readonly capture: (worker: WorkerRef) => Effect.Effect<string, SubstrateError>
  /**
   * The ids of `workers` whose window exists and is their own (every one for plain processes):
   * one question to the substrate for all of them (one `tmux list-windows -a`). A substrate that
   * does not answer counts as showing none of them.
   */
  readonly present: (workers: ReadonlyArray<WorkerRef>) => Effect.Effect<ReadonlySet<string>>
  /** Ends the program (SIGTERM to its process group, SIGKILL after `graceMs`); a window stays, dead. */
  readonly stop: (worker: WorkerRef, graceMs?: number) => Effect.Effect<void>
  /** Ends the program and removes its window (only if the window is still the worker's). */
  readonly close: (worker: WorkerRef) => Effect.Effect<void>
  /** The command that attaches a terminal to the worker (or to all of them), or null when impossible. */
  readonly attachCommand: (target: string | null) => ReadonlyArray<string> | null
}

/** Both substrates, and the one new workers use (`worker.substrate`, `auto` = tmux when installed). */
export interface SubstratesShape {
  /** Decided on first use (`auto` runs `tmux -V` once), so commands that start no worker never ask. */
  readonly preferred: Effect.Effect<SubstrateName>
  readonly get: (name: SubstrateName) => Substrate
}

export class Substrates extends Context.Tag("@trail/workers/Substrates")<Substrates, SubstratesShape>() {}

/**
 * `sh -c WRAPPER <exit file> <argv…>`: sources and deletes `<dir>/env` when there is one (the
 * spawner's environment, see {@link writeEnvFile}), runs argv (with `$TRAIL_BIN` put first on
 * PATH), then records its status atomically in the exit file.
 * INT and TERM are caught (so the status is still written); HUP is not (see the module comment).
 */
const WRAPPER = `trap : INT TERM; e="\${0%/*}/env"; if [ -f "$e" ]; then . "$e"; rm -f "$e"; fi; if [ -n "\${TRAIL_BIN:-}" ]; then PATH="$TRAIL_BIN:$PATH"; export PATH; fi; "$@"; s=$?; printf '%s\\n' "$s" > "$0.tmp" && mv -f "$0.tmp" "$0"; exit $s`

export { EXIT_FILE }
export const OUTPUT_FILE = "output.log"
export const ENV_FILE = "env"

/**
 * Variables of the spawner that a worker must not inherit: the terminal it runs in is its own
 * (tmux sets TMUX and TMUX_PANE, the shell PWD and SHLVL); a worker spawned by a worker gets
 * its own identity, task and folder, never its parent's; it never acts as the spawner's agent
 * (`TRAIL_AGENT` comes before `TRAIL_WORKER_ID` in the agent id, and would defeat the
 * lease-holder check); and it is not inside the spawner's Claude Code session (Claude Code
 * marks its shells with CLAUDECODE and refuses to start under it). The person's own Claude Code
 * settings (`CLAUDE_CODE_USE_BEDROCK`, `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`, …) are
 * configuration, not a session, and are inherited.
 */
const NOT_INHERITED = new Set([
  "TMUX",
  "TMUX_PANE",
  "PWD",
  "OLDPWD",
  "SHLVL",
  "_",
  // Read-only in some shells (bash as sh): exporting them would stop the wrapper.
  "PPID",
  "UID",
  "EUID",
  "SHELLOPTS",
  "BASHOPTS",
  "TRAIL_WORKER_ID",
  "TRAIL_TASK",
  "TRAIL_PATH",
  "TRAIL_TASK_FILE",
  "TRAIL_PROMPT",
  "TRAIL_AGENT",
  // Markers of the Claude Code session the spawner may run in.
  "CLAUDECODE",
  "CLAUDE_CODE_ENTRYPOINT",
  "CLAUDE_CODE_SSE_PORT",
  "CLAUDE_PROJECT_DIR"
])

/** The spawner's environment (the `Env` service's `all`) as a worker inherits it (see NOT_INHERITED). */
export const inheritedEnv = (env: Readonly<Record<string, string | undefined>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) if (value !== undefined && !NOT_INHERITED.has(key)) out[key] = value
  return out
}

/**
 * Writes `env` as `export NAME='value'` lines to `<dir>/env`, mode 0600, for the wrapper to
 * source (names that are not shell identifiers cannot be exported by sh and are left out).
 */
export const writeEnvFile = (dir: string, env: Readonly<Record<string, string>>) => {
  const lines = Object.entries(env)
    .filter(([key]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
    .map(([key, value]) => `export ${key}='${value.replace(/'/g, `'\\''`)}'\n`)
  const file = `${dir}/${ENV_FILE}`
  rmSync(file, { force: true })
  writeFileSync(file, lines.join(""), { mode: 0o600, flag: "wx" })
}

/**
 * The last `max` non-blank lines of what a worker printed. A dead tmux pane is mostly blank
 * lines and tmux's own "Pane is dead" line, which would hide the agent's last words.
 */
export const lastLines = (text: string, max = 200): string =>
  text
    .split("\n")
    .map((line) => line.trimEnd())
    .filter((line) => line !== "" && !/^Pane is dead( \(.*\))?$/.test(line))
    .slice(-max)
    .join("\n")

/** How much of a process worker's output file `capture` reads: its last 64 KiB (the file only grows). */
const CAPTURE_BYTES = 65_536

/** The last `bytes` of `file` as text (a character cut at the start shows as U+FFFD). */
const tailOf = (file: string, bytes: number): string => {
  const fd = openSync(file, "r")
  try {
    const size = fstatSync(fd).size
    const length = Math.min(size, bytes)
    const buffer = Buffer.alloc(length)
    const read = readSync(fd, buffer, 0, length, size - length)
    return buffer.toString("utf8", 0, read)
  } finally {
    closeSync(fd)
  }
}

/** How much of a worker's output its ending event keeps: the last 20 lines, at most 4,000 characters. */
const ENDING_LINES = 20
const ENDING_CHARS = 4_000

/** The last lines of `text` (as {@link lastLines} reads them) a failed or lost worker's event keeps. */
export const endingLines = (text: string): Array<string> => {
  const kept: Array<string> = []
  let chars = 0
  for (const line of lastLines(text, ENDING_LINES).split("\n").reverse()) {
    if (line === "") continue
    if (chars + line.length > ENDING_CHARS) {
      // A last line longer than the whole budget keeps its end.
      if (kept.length === 0) kept.push(line.slice(-ENDING_CHARS))
      break
    }
    kept.push(line)
    chars += line.length
  }
  return kept.reverse()
}

/** The argv that runs `argv` under the exit-recording wrapper. */
export const wrap = (dir: string, argv: ReadonlyArray<string>): [string, ...Array<string>] => [
  "sh",
  "-c",
  WRAPPER,
  `${dir}/${EXIT_FILE}`,
  ...argv
]

const signalGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {
      // already gone
    }
  }
}

export { wallClockSleep }

/**
 * True unless the process is provably not the worker's wrapper: on Linux its command line must
 * name the worker's exit file (a pid can be reused once the wrapper is gone).
 */
const isWrapperOf = (pid: number, dir: string): boolean => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(`${dir}/${EXIT_FILE}`)
  } catch (error) {
    // No /proc (macOS): trust the pid; a vanished process is not ours.
    return !(Predicate.hasProperty(error, "code") && error.code === "ENOENT") || !existsSync("/proc/self")
  }
}

/** SIGTERM to the worker's process group, then SIGKILL if it is still there after `graceMs`. */
const stopGroup = (worker: WorkerRef, graceMs = 2_000): Effect.Effect<void> =>
  stopPid(worker.pid !== null && isWrapperOf(worker.pid, worker.dir) ? worker.pid : null, graceMs)

const stopPid = (pid: number | null, graceMs: number): Effect.Effect<void> =>
  pid === null || !isAlive(pid)
    ? Effect.void
    : Effect.gen(function* () {
        signalGroup(pid, "SIGTERM")
        const deadline = graceMs / 50
        for (let i = 0; i < deadline && isAlive(pid); i++) yield* wallClockSleep(50)
        if (isAlive(pid)) signalGroup(pid, "SIGKILL")
      })

const tmuxFailure = (error: TmuxError, what: string) =>
  new SubstrateError({
    substrate: "tmux",
    reason: error.reason === "missing" ? "missing" : /can't find|no such/i.test(error.detail) ? "gone" : "failed",
    detail: error.reason === "missing" ? error.message : `${what}: ${error.detail}`
  })

/** Workers as windows of the session of {@link Tmux}. */
export const tmuxSubstrate = (tmux: Tmux["Type"]): Substrate => {
  /** The worker's window, once its `@trail_worker` option says it is the worker's; else `gone`. */
  const owned = (worker: WorkerRef, what: string) =>
    Effect.gen(function* () {
      const window = worker.window ?? worker.id
      const tag = yield* tmux.windowTag(window).pipe(Effect.orElseSucceed(() => null))
      if (tag !== worker.tag)
        return yield* new SubstrateError({
          substrate: "tmux",
          reason: "gone",
          detail: `cannot ${what} ${worker.id}: its tmux window ${window} is gone${tag === null ? "" : " (the id now belongs to another window: the tmux server was restarted?)"}`
        })
      return window
    })
  return {
    name: "tmux",
    launch: (spec) =>
      Effect.gen(function* () {
        yield* Effect.try({
          try: () => writeEnvFile(spec.dir, spec.env),
          catch: (cause) =>
            new TmuxError({
              reason: "failed",
              operation: "new-window",
              detail: `cannot write ${spec.dir}/env: ${String(cause)}`
            })
        })
        yield* tmux.ensureSession
        const window = yield* tmux.newWindow({
          name: spec.id,
          cwd: spec.cwd,
          env: {},
          tag: spec.tag,
          argv: wrap(spec.dir, spec.argv)
        })
        return { pid: window.panePid, window: window.id }
      }).pipe(
        // The file holds the spawner's secrets; with no window, no wrapper will source and delete it.
        Effect.onError(() => Effect.sync(() => rmSync(`${spec.dir}/${ENV_FILE}`, { force: true }))),
        Effect.mapError((error) => tmuxFailure(error, `cannot open a window for ${spec.id}`))
      ),
    sendText: (worker, text) =>
      Effect.flatMap(owned(worker, "type into"), (window) =>
        tmux
          .sendText(window, text)
          .pipe(Effect.mapError((error) => tmuxFailure(error, `cannot type into ${worker.id}`)))
      ),
    pressKeys: (worker, keys) =>
      Effect.flatMap(owned(worker, "press keys in"), (window) =>
        tmux
          .pressKeys(window, keys)
          .pipe(Effect.mapError((error) => tmuxFailure(error, `cannot press keys in ${worker.id}`)))
      ),
    capture: (worker) =>
      Effect.flatMap(owned(worker, "read"), (window) =>
        tmux.capture(window).pipe(
          Effect.map((text) => lastLines(text)),
          Effect.mapError((error) => tmuxFailure(error, `cannot read ${worker.id}`))
        )
      ),
    present: (workers) =>
      tmux.windowTags.pipe(
        Effect.map(
          (tags) =>
            new Set(
              workers
                .filter((worker) => {
                  const window = worker.window ?? worker.id
                  return tags.get(window.startsWith("@") ? window : `${tmux.session}:${window}`) === worker.tag
                })
                .map((worker) => worker.id)
            )
        ),
        Effect.orElseSucceed(() => new Set<string>())
      ),
    stop: (worker, graceMs) => stopGroup(worker, graceMs),
    close: (worker) =>
      Effect.gen(function* () {
        const window = yield* owned(worker, "close").pipe(Effect.option)
        yield* stopGroup(worker, 500)
        if (window._tag === "Some") yield* Effect.ignore(tmux.killWindow(window.value))
      }),
    attachCommand: (target) => [
      "tmux",
      "-L",
      tmux.socket,
      "attach-session",
      "-t",
      target === null ? tmux.session : target.startsWith("@") ? target : `${tmux.session}:${target}`
    ]
  }
}

/** Workers as detached child processes (own process group) writing to `output.log`. */
export const processSubstrate: Substrate = {
  name: "process",
  launch: (spec) =>
    Effect.try({
      try: () => {
        const out = openSync(`${spec.dir}/${OUTPUT_FILE}`, "a")
        try {
          const [program, ...args] = wrap(spec.dir, spec.argv)
          const child = spawn(program, args, {
            cwd: spec.cwd,
            env: spec.env,
            detached: true,
            stdio: ["ignore", out, out]
          })
          child.on("error", () => undefined)
          child.unref()
          if (child.pid === undefined) throw new Error("the process did not start")
          return { pid: child.pid, window: null }
        } finally {
          closeSync(out)
        }
      },
      catch: (cause) =>
        new SubstrateError({
          substrate: "process",
          reason: "failed",
          detail: `cannot start ${spec.id}: ${cause instanceof Error ? cause.message : String(cause)}`
        })
    }),
  sendText: (worker) => noTerminal(worker, "type into"),
  pressKeys: (worker) => noTerminal(worker, "press keys in"),
  capture: (worker) =>
    Effect.try({
      try: () => {
        const file = `${worker.dir}/${OUTPUT_FILE}`
        if (!existsSync(file)) return ""
        return lastLines(tailOf(file, CAPTURE_BYTES))
      },
      catch: (cause) =>
        new SubstrateError({
          substrate: "process",
          reason: "failed",
          detail: `cannot read the output of ${worker.id}: ${cause instanceof Error ? cause.message : String(cause)}`
        })
    }),
  present: (workers) => Effect.succeed(new Set(workers.map((worker) => worker.id))),
  stop: (worker, graceMs) => stopGroup(worker, graceMs),
  close: (worker) => stopGroup(worker, 500),
  attachCommand: () => null
}

/** True when a `tmux` binary answers `tmux -V` ({@link version}). */
export const tmuxInstalled = (binary = "tmux"): Effect.Effect<boolean> => Effect.map(version(binary), Option.isSome)

/**
 * Both substrates over `Tmux`; new workers use `preference` (`auto`: tmux when installed).
 * With `tmux` forced and no tmux installed, launching fails with a `missing` SubstrateError.
 */
export const layer = (preference: "auto" | SubstrateName): Layer.Layer<Substrates, never, Tmux> =>
  Layer.effect(
    Substrates,
    Effect.gen(function* () {
      const tmux = yield* Tmux
      const installed = yield* Effect.cached(tmuxInstalled())
      const preferred =
        preference === "auto"
          ? Effect.map(installed, (yes): SubstrateName => (yes ? "tmux" : "process"))
          : Effect.succeed(preference)
      const byName = { tmux: tmuxSubstrate(tmux), process: processSubstrate }
      return { preferred, get: (name: SubstrateName) => byName[name] }
    })
  )

/**
 * Substrates that run nothing: a launch takes a live pid of `Processes.Test` (and creates `dir`'s
 * files no more than a real launch would); stop and close end it as SIGTERM would (status 143
 * recorded, as the wrapper does). Windows are always present; typing is accepted and forgotten.
 */
export const layerTest: Layer.Layer<Substrates, never, TestProcesses | Processes> = Layer.effect(
  Substrates,
  Effect.gen(function* () {
    const control = yield* TestProcesses
    const processes = yield* Processes
    const stop = (worker: WorkerRef) =>
      worker.pid === null
        ? Effect.void
        : Effect.flatMap(processes.isAlive(worker.pid), (alive) =>
            alive && worker.pid !== null ? control.exit(worker.pid, worker.dir, 143) : Effect.void
          )
    const fake = (name: SubstrateName): Substrate => ({
      name,
      launch: () => Effect.map(control.start, (pid) => ({ pid, window: null })),
      sendText: () => Effect.void,
      pressKeys: () => Effect.void,
      capture: () => Effect.succeed(""),
      present: (workers) => Effect.succeed(new Set(workers.map((worker) => worker.id))),
      stop: (worker) => stop(worker),
      close: (worker) => stop(worker),
      attachCommand: () => null
    })
    const byName = { tmux: fake("tmux"), process: fake("process") }
    return { preferred: Effect.succeed<SubstrateName>("process"), get: (name: SubstrateName) => byName[name] }
  })
)
