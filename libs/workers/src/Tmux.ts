/**
 * The `tmux` binary as a service, on trail's own server socket (`tmux -L <socket>`, SPEC §2:
 * `worker.tmux_socket`, default `trail`) with one session (`worker.session`, default
 * `trail-workers`) that holds one window per worker, named by the worker id.
 *
 * The server is created with `remain-on-exit on`, so a pane whose program ends stays, marked dead
 * with its exit status, until trail reads it and closes the window. Text reaches a pane with
 * `send-keys -l` (literal: no key names, no shell) followed by a separate `Enter` key.
 *
 * Errors: {@link TmuxError} with `reason` `missing` (no tmux binary) or `failed` (tmux said no;
 * its stderr is in `detail`).
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import { spawn } from "node:child_process"

export class TmuxError extends Schema.TaggedError<TmuxError>()("TmuxError", {
  reason: Schema.Literal("missing", "failed"),
  operation: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return this.reason === "missing"
      ? 'tmux is not installed (install it, or set worker.substrate = "process")'
      : `tmux ${this.operation} failed: ${this.detail}`
  }
}

/** One window of the session. */
export interface WindowInfo {
  /** tmux's own id of the window (`@12`): unique on the server, unlike names. */
  readonly id: string
  readonly name: string
  /** Process id of the program in the window's pane. */
  readonly panePid: number
  /** The program has exited (the pane stays because of remain-on-exit). */
  readonly dead: boolean
  /**
   * Its exit status once dead, else null. tmux 3.3a loses it for about one pane death in five
   * (the pane is dead, the status empty, and no pane-died hook fires), so a worker's exit status
   * must be recorded by the worker's own wrapper, not read from here.
   */
  readonly exitStatus: number | null
}

export interface NewWindow {
  /** Window name: the worker id. */
  readonly name: string
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  /** The program and its arguments, run directly (no shell). */
  readonly argv: ReadonlyArray<string>
  /** Stored as the window option `@trail_worker`: who the window belongs to (see {@link TmuxShape.windowTag}). */
  readonly tag?: string
}

export interface TmuxShape {
  readonly socket: string
  readonly session: string
  /** Creates the server and session if needed (idempotent). */
  readonly ensureSession: Effect.Effect<void, TmuxError>
  /** Opens a window running `argv` in `cwd` with `env` added to the environment. */
  readonly newWindow: (window: NewWindow) => Effect.Effect<WindowInfo, TmuxError>
  /** Types `text` into the window literally (`send-keys -l`), then presses Enter. */
  readonly sendText: (window: string, text: string) => Effect.Effect<void, TmuxError>
  /** Presses `keys` (tmux key names: `Escape`, `1`) in the window, one by one. */
  readonly pressKeys: (window: string, keys: ReadonlyArray<string>) => Effect.Effect<void, TmuxError>
  /** The window's visible text plus its scroll-back, wrapped lines joined. */
  readonly capture: (window: string) => Effect.Effect<string, TmuxError>
  /** Every window of the session (none when the server is not running). */
  readonly listWindows: Effect.Effect<ReadonlyArray<WindowInfo>, TmuxError>
  readonly killWindow: (window: string) => Effect.Effect<void, TmuxError>
  /**
   * The window's `@trail_worker` option ("" when unset), or null when the window (or the server)
   * does not exist. tmux reuses window ids after a restart: this says whose window it is now.
   */
  readonly windowTag: (window: string) => Effect.Effect<string | null, TmuxError>
  /**
   * Every window of the server with its `@trail_worker` option ("" when unset), in one
   * `list-windows -a`: keyed by tmux's window id (`@12`) and by `<session>:<name>` (the targets
   * {@link windowTag} takes). Empty when the server is not running.
   */
  readonly windowTags: Effect.Effect<ReadonlyMap<string, string>, TmuxError>
  /** Stops the whole server (tests; `trail kill` of the last worker never does this). */
  readonly killServer: Effect.Effect<void>
}

export class Tmux extends Context.Tag("@trail/workers/Tmux")<Tmux, TmuxShape>() {}

export interface TmuxConfig {
  /** `-L` socket name. */
  readonly socket: string
  readonly session: string
  /** The tmux executable (default `tmux` from PATH). */
  readonly binary?: string
}

const FIELD = "\t"
const WINDOW_FORMAT = ["#{window_name}", "#{pane_pid}", "#{pane_dead}", "#{pane_dead_status}", "#{window_id}"].join(
  FIELD
)

const parseWindow = (line: string): WindowInfo | null => {
  const [name, pid, dead, status, id] = line.split(FIELD)
  if (name === undefined || pid === undefined || id === undefined) return null
  const exit = status === undefined || status === "" ? null : Number(status)
  return { id, name, panePid: Number(pid), dead: dead === "1", exitStatus: Number.isInteger(exit) ? exit : null }
}

/** Which tmux server a command talks to: trail's own (`-L name`) or the one at a socket path (`-S`). */
export type Server = { readonly name: string } | { readonly path: string }

/** How a tmux command ended: its exit code (null when a signal ended it) and its whole output. */
interface Ended {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `binary args` to its end with `stdin` (or nothing) on its standard input. Through Node's
 * `spawn`, not @effect/platform's `Command`: the supervisor lists its windows on every renewal
 * tick, and `Command`'s streams for stdout and stderr allocated ~0.8 MB for that one call (100
 * windows); here each output is collected into one string (docs/benchmarks.md, issue 14). The
 * program runs in a process group of its own (`detached`, as `Command` started it; `execFile`
 * cannot): a terminal's Ctrl-C goes to trail's foreground group, and `trail supervise` takes the
 * first one as a drain, during which the tmux commands under way (a spawn's `new-window`, a
 * tick's `list-windows`) must finish. Interrupting it kills the program's group. Fails with
 * `missing` when `binary` cannot be found, `failed` when it cannot be started.
 */
const exec = (binary: string, args: ReadonlyArray<string>, operation: string, stdin?: string) =>
  Effect.async<Ended, TmuxError>((resume) => {
    const child = spawn(binary, args, { detached: true, stdio: "pipe" })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    // A program that cannot be started emits `error`, and may then emit `close`: the first one answers.
    let ended = false
    const end = (answer: Effect.Effect<Ended, TmuxError>) => {
      if (ended) return
      ended = true
      resume(answer)
    }
    child.once("error", (error: NodeJS.ErrnoException) =>
      end(
        Effect.fail(
          new TmuxError({ reason: error.code === "ENOENT" ? "missing" : "failed", operation, detail: error.message })
        )
      )
    )
    child.once("close", (code) => end(Effect.succeed({ code, stdout, stderr })))
    // A program that exits without reading its input closes the pipe: not a failure of the command.
    child.stdin.on("error", () => undefined)
    child.stdin.end(stdin)
    return Effect.sync(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM")
      } catch {
        child.kill()
      }
    })
  })

/**
 * Runs one tmux command on `server`; fails with its stderr unless it exits 0. `operation` names
 * the command in errors; `stdin`, when given, is fed to it (`load-buffer -`).
 */
export const run = (server: Server, operation: string, args: ReadonlyArray<string>, binary = "tmux", stdin?: string) =>
  Effect.flatMap(exec(binary, [...serverArgs(server), ...args], operation, stdin), ({ code, stderr, stdout }) =>
    code === 0
      ? Effect.succeed(stdout)
      : Effect.fail(
          new TmuxError({ reason: "failed", operation, detail: stderr.trim() || `exit ${code ?? "by a signal"}` })
        )
  )

const serverArgs = (server: Server) => ("name" in server ? ["-L", server.name] : ["-S", server.path])

/**
 * True when `tmuxEnv` (the value of `$TMUX` inside tmux: `socket-path,server-pid,session`) names
 * `server`: the same socket path, or a socket named `server.name` (`-L` sockets live at
 * `<tmpdir>/tmux-<uid>/<name>`).
 */
export const isServerOf = (server: Server, tmuxEnv: string): boolean => {
  const socket = tmuxEnv.split(",")[0] ?? ""
  return "path" in server ? socket === server.path : socket.slice(socket.lastIndexOf("/") + 1) === server.name
}

/** The command that attaches a terminal to `target` on `server` from outside tmux. */
export const attachCommand = (server: Server, target: string, binary = "tmux"): ReadonlyArray<string> => [
  binary,
  ...serverArgs(server),
  "attach-session",
  "-t",
  target
]

/** Moves the tmux client this process runs in to `target` (switch-client, select-window, select-pane). */
export const switchClient = (server: Server, target: string, binary = "tmux") =>
  Effect.forEach(
    ["switch-client", "select-window", "select-pane"],
    (operation) => run(server, operation, [operation, "-t", target], binary),
    { discard: true }
  )

/** What `tmux -V` says (`tmux 3.4`), or None when tmux is not installed or does not answer. */
export const version = (binary = "tmux") =>
  exec(binary, ["-V"], "version").pipe(
    Effect.map(({ code, stdout }) => (code === 0 ? Option.some(stdout.trim()) : Option.none<string>())),
    Effect.orElseSucceed(() => Option.none<string>())
  )

/**
 * Above this many bytes, or with a line break, text is pasted through a tmux buffer: a long
 * `send-keys` argument fails ("command too long" at ~16 kB, E2BIG at ~128 kB), and a line break
 * typed as a key would submit a half-written message to an agent's input.
 */
export const PASTE_THRESHOLD_BYTES = 4_096

/**
 * Puts `text` into `target` literally, then presses Enter (a separate key). Short one-line text
 * is typed (`send-keys -l`); longer or multi-line text is loaded into a buffer of its own from
 * stdin (`load-buffer -b … -`) and pasted (`paste-buffer -p -d`: bracketed when the program
 * asked for it, the buffer deleted after).
 */
export const typeInto = (server: Server, target: string, text: string, binary = "tmux") => {
  if (Buffer.byteLength(text, "utf8") <= PASTE_THRESHOLD_BYTES && !/[\r\n]/.test(text))
    return Effect.zipRight(
      run(server, "send-keys", ["send-keys", "-t", target, "-l", "--", text], binary),
      pressKeys(server, target, ["Enter"], binary)
    )
  // One buffer per delivery: two replies at once never paste each other's text.
  const buffer = `trail-reply-${process.pid}-${++buffers}`
  return run(server, "load-buffer", ["load-buffer", "-b", buffer, "-"], binary, text).pipe(
    Effect.zipRight(run(server, "paste-buffer", ["paste-buffer", "-p", "-d", "-b", buffer, "-t", target], binary)),
    Effect.zipRight(pressKeys(server, target, ["Enter"], binary))
  )
}

let buffers = 0

/** Presses `keys` (tmux key names: `Enter`, `Escape`, `1`) in `target`, one by one. */
export const pressKeys = (server: Server, target: string, keys: ReadonlyArray<string>, binary = "tmux") =>
  Effect.forEach(keys, (key) => run(server, "send-keys", ["send-keys", "-t", target, key], binary), {
    discard: true
  })

export const make = (config: TmuxConfig) =>
  Effect.gen(function* () {
    const binary = config.binary ?? "tmux"
    // A window is named by its worker id, or by tmux's id (`@12`), which stays unique when two
    // roots share a tmux server and session (both would have a w1).
    const target = (window: string) => (window.startsWith("@") ? window : `${config.session}:${window}`)
    const server: Server = { name: config.socket }

    /** Runs one tmux command on trail's server. */
    const tmux = (operation: string, ...args: ReadonlyArray<string>) => run(server, operation, args, binary)

    const noServer = (error: TmuxError) =>
      error.reason === "failed" && /no server running|error connecting|no sessions/i.test(error.detail)

    const ensureSession = Effect.gen(function* () {
      const exists = yield* tmux("has-session", "has-session", "-t", `=${config.session}`).pipe(
        Effect.as(true),
        Effect.catchIf(
          (e) => e.reason === "failed",
          () => Effect.succeed(false)
        )
      )
      if (exists) return
      // The first window only keeps the session alive; workers get windows of their own.
      // Another caller may create the session at the same moment: that is success too.
      yield* tmux(
        "new-session",
        "new-session",
        "-d",
        "-s",
        config.session,
        "-n",
        "trail",
        "-x",
        "200",
        "-y",
        "50",
        "tail",
        "-f",
        "/dev/null"
      ).pipe(
        Effect.catchIf(
          (e) => e.reason === "failed" && /duplicate session/i.test(e.detail),
          () => Effect.succeed("")
        )
      )
      yield* tmux("set-option", "set-option", "-g", "remain-on-exit", "on")
    })

    const newWindow = (window: NewWindow) =>
      Effect.gen(function* () {
        const env = Object.entries(window.env).flatMap(([key, value]) => ["-e", `${key}=${value}`])
        const out = yield* tmux(
          "new-window",
          "new-window",
          "-d",
          "-t",
          `${config.session}:`,
          "-n",
          window.name,
          "-c",
          window.cwd,
          "-P",
          "-F",
          WINDOW_FORMAT,
          ...env,
          "--",
          ...window.argv
        )
        const info = parseWindow(out.trim())
        if (info === null)
          return yield* new TmuxError({ reason: "failed", operation: "new-window", detail: `unexpected output ${out}` })
        if (window.tag !== undefined)
          yield* tmux("set-option", "set-option", "-w", "-t", info.id, "@trail_worker", window.tag)
        return info
      })

    const sendText = (window: string, text: string) => typeInto(server, target(window), text, binary)

    const pressWindowKeys = (window: string, keys: ReadonlyArray<string>) =>
      pressKeys(server, target(window), keys, binary)

    const capture = (window: string) =>
      tmux("capture-pane", "capture-pane", "-p", "-J", "-S", "-", "-t", target(window))

    const listWindows = tmux("list-windows", "list-windows", "-t", `=${config.session}`, "-F", WINDOW_FORMAT).pipe(
      Effect.map((out) =>
        out
          .split("\n")
          .filter((line) => line !== "")
          .map(parseWindow)
          .filter((w): w is WindowInfo => w !== null && w.name !== "trail")
      ),
      Effect.catchIf(noServer, () => Effect.succeed<ReadonlyArray<WindowInfo>>([]))
    )

    const killWindow = (window: string) => tmux("kill-window", "kill-window", "-t", target(window)).pipe(Effect.asVoid)

    const windowTag = (window: string) =>
      tmux("display-message", "display-message", "-p", "-t", target(window), "#{@trail_worker}").pipe(
        Effect.map((out): string | null => out.replace(/\n$/, "")),
        Effect.catchIf(
          (e) => e.reason === "failed",
          () => Effect.succeed(null)
        )
      )

    const windowTags = tmux(
      "list-windows",
      "list-windows",
      "-a",
      "-F",
      ["#{window_id}", "#{session_name}", "#{window_name}", "#{@trail_worker}"].join(FIELD)
    ).pipe(
      Effect.map((out) => {
        const tags = new Map<string, string>()
        for (const line of out.split("\n")) {
          const [id, session, name, ...tag] = line.split(FIELD)
          if (id === undefined || session === undefined || name === undefined) continue
          // A tag holding a tab (a root path with one) was split with the line: joined back.
          const value = tag.join(FIELD)
          tags.set(id, value)
          // Two windows of one session may share a name: the first is the one `-t session:name` finds.
          if (!tags.has(`${session}:${name}`)) tags.set(`${session}:${name}`, value)
        }
        return tags
      }),
      Effect.catchIf(noServer, () => Effect.succeed<ReadonlyMap<string, string>>(new Map()))
    )

    const killServer = tmux("kill-server", "kill-server").pipe(Effect.asVoid, Effect.ignore)

    return Tmux.of({
      socket: config.socket,
      session: config.session,
      ensureSession,
      newWindow,
      sendText,
      pressKeys: pressWindowKeys,
      capture,
      listWindows,
      killWindow,
      windowTag,
      windowTags,
      killServer
    })
  })

/** The Tmux service for `config`. */
export const layer = (config: TmuxConfig) => Layer.effect(Tmux, make(config))
