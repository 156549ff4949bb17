/**
 * Where a worker's program runs (SPEC §2): a window of trail's tmux session, or a plain child
 * process whose output goes to `.trail/workers/<id>/output.log` (no attach, no typing).
 *
 * Both start the program through the same tiny `sh` wrapper, which writes the program's exit
 * status to `.trail/workers/<id>/exit` when it ends (however it ends: normally, by a signal, or
 * because its window was killed). That file is trail's death signal: {@link waitForExit} waits for
 * it with a file-system watch (inotify here), so a dead worker is noticed at once without
 * polling, by whichever process is watching, even one started after the worker died. tmux's own
 * `pane-died` hook and `pane_dead_status` are not used: tmux 3.3a loses about one pane death in five.
 *
 * Liveness is `kill(pid, 0)` on the wrapper's pid (the pane's pid under tmux): no tmux call.
 *
 * Errors: {@link SubstrateError} (`missing`: tmux not installed; `failed`: it could not start;
 * `unsupported`: e.g. typing into a plain process; `gone`: its window no longer exists).
 */
import { spawn, spawnSync } from "node:child_process"
import { closeSync, existsSync, openSync, readFileSync, watch } from "node:fs"
import { SubstrateError, type SubstrateName } from "@trail/domain"
import { Context, Effect, Layer } from "effect"
import { Tmux, type TmuxError } from "./Tmux.js"

/** What a worker's program needs to start. */
export interface LaunchSpec {
  /** The worker id (its window's name). */
  readonly id: string
  /** `.trail/workers/<id>`: holds `exit` and, for plain processes, `output.log`. */
  readonly dir: string
  readonly cwd: string
  /** Added to trail's own environment. */
  readonly env: Readonly<Record<string, string>>
  readonly argv: ReadonlyArray<string>
}

/** One way of running workers. */
export interface Substrate {
  readonly name: SubstrateName
  /**
   * Starts the program; returns the wrapper's pid and, under tmux, the window's id (`@12`), by
   * which the other operations then find it (`target` below: that id, else the worker id).
   */
  readonly launch: (
    spec: LaunchSpec
  ) => Effect.Effect<{ readonly pid: number; readonly window: string | null }, SubstrateError>
  /** Types `text` into the worker's input literally, then Enter. */
  readonly sendText: (target: string, text: string) => Effect.Effect<void, SubstrateError>
  /** What the worker printed lately (the pane with scroll-back, or the tail of output.log). */
  readonly capture: (target: string, dir: string) => Effect.Effect<string, SubstrateError>
  /** Ends the program (SIGTERM to its process group, SIGKILL after `graceMs`); a window stays, dead. */
  readonly stop: (id: string, pid: number | null, graceMs?: number) => Effect.Effect<void>
  /** Ends the program and removes its window. */
  readonly close: (target: string, pid: number | null) => Effect.Effect<void>
  /** The command that attaches a terminal to the worker (or to all of them), or null when impossible. */
  readonly attachCommand: (target: string | null) => ReadonlyArray<string> | null
}

/** Both substrates, and the one new workers use (`worker.substrate`, `auto` = tmux when installed). */
export interface SubstratesShape {
  /** Decided on first use (`auto` runs `tmux -V` once), so commands that start no worker never ask. */
  readonly preferred: () => SubstrateName
  readonly get: (name: SubstrateName) => Substrate
}

export class Substrates extends Context.Tag("@trail/workers/Substrates")<Substrates, SubstratesShape>() {}

/**
 * `sh -c WRAPPER <exit file> <argv…>`: runs argv (with `$TRAIL_BIN` put first on PATH: tmux
 * ignores a PATH given with `new-window -e`), then records its status atomically in the exit file.
 */
const WRAPPER = `trap : HUP INT TERM; if [ -n "\${TRAIL_BIN:-}" ]; then PATH="$TRAIL_BIN:$PATH"; export PATH; fi; "$@"; s=$?; printf '%s\\n' "$s" > "$0.tmp" && mv -f "$0.tmp" "$0"; exit $s`

export const EXIT_FILE = "exit"
export const OUTPUT_FILE = "output.log"

/** The argv that runs `argv` under the exit-recording wrapper. */
export const wrap = (dir: string, argv: ReadonlyArray<string>): Array<string> => [
  "sh",
  "-c",
  WRAPPER,
  `${dir}/${EXIT_FILE}`,
  ...argv
]

/** The recorded exit status in `dir`, if the program has ended (null status: unreadable). */
export const readExit = (dir: string): { readonly status: number | null } | undefined => {
  const file = `${dir}/${EXIT_FILE}`
  if (!existsSync(file)) return undefined
  const status = Number.parseInt(readFileSync(file, "utf8").trim(), 10)
  return { status: Number.isInteger(status) ? status : null }
}

/**
 * Waits until the program whose wrapper writes into `dir` has ended; returns its exit status.
 * Event-driven: one `fs.watch` on `dir` (interrupting the effect closes it).
 */
export const waitForExit = (dir: string): Effect.Effect<number | null> =>
  Effect.async<number | null>((resume) => {
    let done = false
    const check = () => {
      if (done) return
      const exit = readExit(dir)
      if (exit !== undefined) {
        done = true
        watcher?.close()
        resume(Effect.succeed(exit.status))
      }
    }
    let watcher: ReturnType<typeof watch> | undefined
    try {
      watcher = watch(dir, { persistent: false }, check)
      watcher.on("error", () => undefined)
    } catch {
      watcher = undefined
    }
    check()
    return Effect.sync(() => {
      done = true
      watcher?.close()
    })
  })

/** True while a process with this pid exists. */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

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

/**
 * Waits `ms` of wall-clock time. Only for waiting on OS processes to die: their deaths happen in
 * real time whatever clock the caller's effects run on (a TestClock would never advance here).
 */
export const wallClockSleep = (ms: number) =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** SIGTERM to the process group, then SIGKILL if it is still there after `graceMs`. */
const stopGroup = (pid: number | null, graceMs = 2_000): Effect.Effect<void> =>
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
export const tmuxSubstrate = (tmux: Tmux["Type"]): Substrate => ({
  name: "tmux",
  launch: (spec) =>
    Effect.gen(function* () {
      yield* tmux.ensureSession
      const window = yield* tmux.newWindow({
        name: spec.id,
        cwd: spec.cwd,
        env: spec.env,
        argv: wrap(spec.dir, spec.argv)
      })
      return { pid: window.panePid, window: window.id }
    }).pipe(Effect.mapError((error) => tmuxFailure(error, `cannot open a window for ${spec.id}`))),
  sendText: (id, text) =>
    tmux.sendText(id, text).pipe(Effect.mapError((error) => tmuxFailure(error, `cannot type into ${id}`))),
  capture: (id) => tmux.capture(id).pipe(Effect.mapError((error) => tmuxFailure(error, `cannot read ${id}`))),
  stop: (_id, pid, graceMs) => stopGroup(pid, graceMs),
  close: (id, pid) => Effect.zipRight(stopGroup(pid, 500), Effect.ignore(tmux.killWindow(id))),
  attachCommand: (target) => [
    "tmux",
    "-L",
    tmux.socket,
    "attach-session",
    "-t",
    target === null ? tmux.session : target.startsWith("@") ? target : `${tmux.session}:${target}`
  ]
})

/** Workers as detached child processes (own process group) writing to `output.log`. */
export const processSubstrate: Substrate = {
  name: "process",
  launch: (spec) =>
    Effect.try({
      try: () => {
        const out = openSync(`${spec.dir}/${OUTPUT_FILE}`, "a")
        try {
          const [program, ...args] = wrap(spec.dir, spec.argv)
          const child = spawn(program!, args, {
            cwd: spec.cwd,
            env: { ...process.env, ...spec.env },
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
  sendText: (id) =>
    Effect.fail(
      new SubstrateError({
        substrate: "process",
        reason: "unsupported",
        detail: `worker ${id} runs as a plain process (worker.substrate = "process"): it has no terminal to type into`
      })
    ),
  capture: (_id, dir) =>
    Effect.sync(() => {
      const file = `${dir}/${OUTPUT_FILE}`
      if (!existsSync(file)) return ""
      const text = readFileSync(file, "utf8")
      return text.length > 65_536 ? text.slice(-65_536) : text
    }),
  stop: (_id, pid, graceMs) => stopGroup(pid, graceMs),
  close: (_id, pid) => stopGroup(pid, 500),
  attachCommand: () => null
}

/** True when a `tmux` binary answers `tmux -V`. */
export const tmuxInstalled = (binary = "tmux"): boolean => {
  try {
    const { status } = spawnSync(binary, ["-V"])
    return status === 0
  } catch {
    return false
  }
}

/**
 * Both substrates over `Tmux`; new workers use `preference` (`auto`: tmux when installed).
 * With `tmux` forced and no tmux installed, launching fails with a `missing` SubstrateError.
 */
export const layer = (preference: "auto" | SubstrateName) =>
  Layer.effect(
    Substrates,
    Effect.gen(function* () {
      const tmux = yield* Tmux
      let decided: SubstrateName | undefined
      const preferred = (): SubstrateName =>
        (decided ??= preference === "auto" ? (tmuxInstalled() ? "tmux" : "process") : preference)
      const byName = { tmux: tmuxSubstrate(tmux), process: processSubstrate }
      return { preferred, get: (name: SubstrateName) => byName[name] }
    })
  )
