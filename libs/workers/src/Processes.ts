/**
 * Worker programs seen from outside (SPEC §2): is a pid alive, has the wrapper recorded an exit
 * status (`.trail/workers/<id>/exit`, see {@link Substrate.wrap}), and waiting for that record.
 *
 * - {@link Processes.Live}: `kill(pid, 0)` (EPERM counts as alive: the process exists, it is just
 *   not ours) and the exit file read and watched through @effect/platform's `FileSystem`.
 * - {@link Processes.Test}: an in-memory table of pids and exit records driven by the test through
 *   {@link TestProcesses} (a pid dies, a program exits with a status, a liveness check wedges).
 *
 * Also here: the live layers of the domain's {@link Host} and {@link Env} tags, and {@link live},
 * the bundle of every outside-thing layer a CLI handler or the supervisor needs on a real machine.
 */
import { homedir, hostname } from "node:os"
import * as NodeCommandExecutor from "@effect/platform-node/NodeCommandExecutor"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Terminal from "@effect/platform/Terminal"
// (the module, not the package: the CLI loads @trail/domain on first use, and this module is eager)
import { Env, Host } from "@trail/domain/outside"
import {
  Cause,
  Context,
  Duration,
  Effect,
  HashMap,
  HashSet,
  Layer,
  LogLevel,
  Option,
  PubSub,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { watchBackend, wakes } from "./Wakes.js"

export const EXIT_FILE = "exit"

/** The period of {@link ProcessesShape.waitForExit}'s fallback read. */
export const EXIT_FALLBACK = Duration.seconds(2)

export interface ProcessesShape {
  /** True while a process with this pid exists. */
  readonly isAlive: (pid: number) => Effect.Effect<boolean>
  /**
   * {@link isAlive} for many pids at once: pid → alive for every pid whose check answered within
   * `timeout`; a pid missing from the map did not answer (a wedged host), the others still do.
   * One effect for them all, so a caller that asks about a hundred workers every few seconds
   * (the supervisor's renewal tick) makes no fiber or timer per pid. Live: one synchronous pass
   * of `kill(pid, 0)`, which answers at once (the timeout is never reached).
   */
  readonly aliveAmong: (
    pids: ReadonlyArray<number>,
    timeout: Duration.DurationInput
  ) => Effect.Effect<ReadonlyMap<number, boolean>>
  /** The status the wrapper recorded in `<dir>/exit`: None while it runs, Some(null) when unreadable. */
  readonly readExit: (dir: string) => Effect.Effect<Option.Option<number | null>>
  /**
   * Waits until the program whose wrapper writes into `dir` has ended; its exit status.
   * Live: reads the record on each wake of `dir` ({@link wakes}: the watch is up before the first
   * read, and a fallback read every {@link EXIT_FALLBACK}, for file systems whose watches miss
   * events). A folder that cannot be watched (gone) leaves the fallback (logged at Debug).
   * `watchOnly`: no fallback read, for a caller that notices a program that ended unseen by
   * other means (the supervisor's liveness tick, which then waits here again): a hundred
   * workers' fallback reads were most of an idle supervisor's CPU.
   */
  readonly waitForExit: (dir: string, options?: { readonly watchOnly?: boolean }) => Effect.Effect<number | null>
}

/**
 * `kill(pid, 0)`: true while a process with this pid exists (EPERM: it exists, it is not ours).
 * The synchronous core of {@link Processes.Live}'s `isAlive`, also used by the live substrate to
 * stop a process group.
 */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error instanceof Error && "code" in error && error.code === "EPERM"
  }
}

/**
 * Waits `ms` of wall-clock time. Only for what happens in real time whatever clock the caller's
 * effects run on (a TestClock would never advance here): another process writing a file, an OS
 * process dying, tmux answering. Interrupting it clears the timer.
 */
export const wallClockSleep = (ms: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/** Parses an exit file's text: the status, or null when it is not an integer. */
export const parseExit = (text: string): number | null => {
  const status = Number.parseInt(text.trim(), 10)
  return Number.isInteger(status) ? status : null
}

const makeLive = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const readExit = (dir: string) =>
    fs.readFileString(`${dir}/${EXIT_FILE}`).pipe(
      Effect.map((text) => Option.some(parseExit(text))),
      Effect.catchAll((error) =>
        // Absent: the program still runs (the wrapper renames the record into place at once).
        error._tag === "SystemError" && error.reason === "NotFound"
          ? Effect.succeed(Option.none<number | null>())
          : // There but unreadable: the program has ended with an unknown status.
            Effect.as(
              Effect.logWarning(`cannot read ${dir}/${EXIT_FILE}`, Cause.fail(error)),
              Option.some<number | null>(null)
            )
      )
    )
  const waitForExit = (dir: string, options?: { readonly watchOnly?: boolean }) =>
    wakes({
      dir,
      ...(options?.watchOnly === true ? {} : { fallback: EXIT_FALLBACK }),
      unwatchable: LogLevel.Debug
    }).pipe(
      Stream.mapEffect(() => readExit(dir)),
      Stream.filterMap((exit) => exit),
      Stream.runHead,
      Effect.map(Option.getOrElse(() => null)),
      Effect.provideService(FileSystem.FileSystem, fs)
    )
  return Processes.of({
    isAlive: (pid) => Effect.sync(() => isAlive(pid)),
    aliveAmong: (pids) => Effect.sync(() => new Map(pids.map((pid) => [pid, isAlive(pid)]))),
    readExit,
    waitForExit
  })
})

interface TestState {
  readonly alive: HashSet.HashSet<number>
  /** Pids whose liveness check never answers (a wedged host). */
  readonly stalled: HashSet.HashSet<number>
  readonly exits: HashMap.HashMap<string, number | null>
  readonly nextPid: number
}

/** The test's handle on {@link Processes.Test}. */
export interface TestProcessesShape {
  /** A new live pid (what a test substrate's launch returns). */
  readonly start: Effect.Effect<number>
  /** The program ended: its pid is gone and, when `status` is given, its wrapper recorded it in `dir`. */
  readonly exit: (pid: number, dir: string, status?: number | null) => Effect.Effect<void>
  /** From now on asking whether `pid` is alive never answers (`aliveAmong` leaves it out after its timeout). */
  readonly stall: (pid: number) => Effect.Effect<void>
}

export class TestProcesses extends Context.Tag("@trail/workers/TestProcesses")<TestProcesses, TestProcessesShape>() {}

const makeTest = Effect.gen(function* () {
  const state = yield* SubscriptionRef.make<TestState>({
    alive: HashSet.empty(),
    stalled: HashSet.empty(),
    exits: HashMap.empty(),
    // Far above real pids' range, so a test pid is never a process of this machine.
    nextPid: 4_000_001
  })
  const readExit = (dir: string) => Effect.map(SubscriptionRef.get(state), (s) => HashMap.get(s.exits, dir))
  const processes = Processes.of({
    isAlive: (pid) =>
      Effect.flatMap(SubscriptionRef.get(state), (s) =>
        HashSet.has(s.stalled, pid) ? Effect.never : Effect.succeed(HashSet.has(s.alive, pid))
      ),
    // A stalled pid among them: the others' answers come when the timeout runs out (on the Clock).
    aliveAmong: (pids, timeout) =>
      Effect.flatMap(SubscriptionRef.get(state), (s) => {
        const answers = new Map<number, boolean>()
        let wedged = false
        for (const pid of pids)
          if (HashSet.has(s.stalled, pid)) wedged = true
          else answers.set(pid, HashSet.has(s.alive, pid))
        return wedged ? Effect.as(Effect.sleep(timeout), answers) : Effect.succeed(answers)
      }),
    readExit,
    waitForExit: (dir) =>
      state.changes.pipe(
        Stream.filterMap((s) => HashMap.get(s.exits, dir)),
        Stream.runHead,
        Effect.map(Option.getOrElse(() => null))
      )
  })
  const control = TestProcesses.of({
    start: SubscriptionRef.modify(state, (s) => [
      s.nextPid,
      { ...s, alive: HashSet.add(s.alive, s.nextPid), nextPid: s.nextPid + 1 }
    ]),
    exit: (pid, dir, status) =>
      SubscriptionRef.update(state, (s) => ({
        ...s,
        alive: HashSet.remove(s.alive, pid),
        exits: status === undefined ? s.exits : HashMap.set(s.exits, dir, status)
      })),
    stall: (pid) => SubscriptionRef.update(state, (s) => ({ ...s, stalled: HashSet.add(s.stalled, pid) }))
  })
  return Context.make(Processes, processes).pipe(Context.add(TestProcesses, control))
})

export class Processes extends Context.Tag("@trail/workers/Processes")<Processes, ProcessesShape>() {
  static readonly Live: Layer.Layer<Processes, never, FileSystem.FileSystem> = Layer.effect(this, makeLive)
  static readonly Test: Layer.Layer<Processes | TestProcesses> = Layer.effectContext(makeTest)
}

/** The watches of {@link watchesTest}: the test says which path changed. */
export interface TestWatchesShape {
  /** Every watch of `path`, or of the folder holding it, sees a change of `path`. */
  readonly touch: (path: string) => Effect.Effect<void>
}

export class TestWatches extends Context.Tag("@trail/workers/TestWatches")<TestWatches, TestWatchesShape>() {}

/**
 * The underlying `FileSystem` with `watch` driven by the test ({@link TestWatches.touch}) instead
 * of the kernel: reads and writes stay real (temp dirs), wake-ups happen when the test says.
 */
export const watchesTest: Layer.Layer<FileSystem.FileSystem | TestWatches, never, FileSystem.FileSystem> =
  Layer.effectContext(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const changes = yield* PubSub.unbounded<string>()
      const watch = (path: string) =>
        Stream.fromPubSub(changes).pipe(
          Stream.filter((changed) => changed === path || changed.startsWith(`${path}/`)),
          Stream.map((changed) => FileSystem.WatchEventUpdate({ path: changed }))
        )
      return Context.make(FileSystem.FileSystem, { ...fs, watch }).pipe(
        Context.add(TestWatches, { touch: (path) => Effect.asVoid(PubSub.publish(changes, path)) })
      )
    })
  )

/** {@link Host} of this process: `os.hostname()`, `process.pid` and `os.homedir()`. */
export const hostLive: Layer.Layer<Host> = Layer.sync(Host, () => ({
  hostname: hostname(),
  pid: process.pid,
  home: homedir()
}))

/** {@link Env} from `process.env`, read when the layer is built. */
export const envLive: Layer.Layer<Env> = Layer.sync(Env, () => {
  const vars: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) vars[key] = value
  return Env.of({ all: vars, get: (name) => Option.fromNullable(vars[name]) })
})

/**
 * The Node Terminal, made when first used. @effect/cli's `Command.run` asks for a Terminal (its
 * `--wizard` prompts), but making one reads `process.stdin`, which opens standard input as a
 * stream: every `trail` start would pay for that, and one still opening keeps the process alive
 * for a while after the command is done.
 */
const terminalLive: Layer.Layer<Terminal.Terminal> = Layer.scoped(
  Terminal.Terminal,
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const made = yield* Effect.cached(NodeTerminal.make().pipe(Scope.extend(scope)))
    const use = <A, E, R>(f: (terminal: Terminal.Terminal) => Effect.Effect<A, E, R>) => Effect.flatMap(made, f)
    return Terminal.Terminal.of({
      columns: use((t) => t.columns),
      rows: use((t) => t.rows),
      isTTY: use((t) => t.isTTY),
      readInput: use((t) => t.readInput),
      readLine: use((t) => t.readLine),
      display: (text) => use((t) => t.display(text))
    })
  })
)

/**
 * The Node platform trail uses: FileSystem, Path, CommandExecutor, and the Terminal that
 * @effect/cli asks for. NodeContext.layer less its WorkerManager, whose modules (worker_threads
 * and the worker protocol's schemas) every `trail` start would otherwise load; the walk worker
 * is started through node:worker_threads itself. File watches go through trail's
 * {@link watchBackend} (coalesced `fs.watch`).
 */
const platformLive = Layer.mergeAll(NodePath.layer, NodeCommandExecutor.layer, terminalLive).pipe(
  Layer.provideMerge(NodeFileSystem.layer.pipe(Layer.provide(watchBackend)))
)

/** Every outside thing on this machine: Processes, Host, Env and the Node platform (FileSystem, Path, CommandExecutor, Terminal). */
export const live = Layer.mergeAll(Processes.Live, hostLive, envLive).pipe(Layer.provideMerge(platformLive))
