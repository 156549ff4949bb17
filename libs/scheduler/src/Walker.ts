/**
 * The tree walk behind `trail init`: finds the folders of a root and measures each one.
 *
 * - Honours `.gitignore` and `.ignore` files at every level (`scan.respect_gitignore`), with
 *   git's precedence: the deepest file that has an opinion about a path decides. Patterns are
 *   matched in linear time (Glob.ts): no pattern can hang the walk.
 * - Skips hidden directories (`.git`, `.trail`, …) and hidden files (`.gitignore`, `.env`: they
 *   neither count nor make a folder), and never follows symlinked directories.
 * - `scan.exclude` globs prune a folder and everything below it; when `scan.include` is
 *   non-empty only matching folders are registered (the walk still descends everywhere).
 * - Records per folder its direct regular-file count; with `static_signal = "bytes"` their
 *   total bytes (a stat per file: otherwise 0, as churn is, since nothing else reads them); with
 *   `static_signal = "churn"` the number of commits in the last 90 days that touched a file
 *   directly in it (one `git log` pass). A signal switched to later is measured by the next
 *   `trail init` (or `trail sweep new --rescan`).
 *
 * The walk (walk.ts) is synchronous `node:fs`: one tight loop of readdir (and a stat per file
 * for bytes), measured against `find` in docs/benchmarks.md. A large walk is shared with a worker
 * thread so that both cores issue syscalls: whichever thread runs dry takes half of what the
 * other has pending, to the end (the protocol: `ToWalker` in walk.ts). The walk on this thread
 * runs in parts of {@link WALK_PART} directories with a turn of the event loop between them, so
 * that SIGINT and SIGTERM stop `trail init` at once however large the tree.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { ScanError, type ScanConfig, type StaticSignal } from "@trail/domain"
import { Context, Data, Effect, Layer } from "effect"
import { Worker } from "node:worker_threads"
import type { ScannedFolder } from "./CoverageStore.js"
import {
  halve,
  MAIN_HUNGRY,
  mergeResults,
  shareWhenAsked,
  walkFrames,
  WORKER_HUNGRY,
  type Frame,
  type ToWalker,
  type ToWorker,
  type WalkResult,
  type WalkSettings,
  type WorkerJob,
  unpack
} from "./walk.js"

export interface ScanProgress {
  readonly folders: number
  readonly files: number
}

export interface ScanOptions {
  readonly root: string
  readonly scan: ScanConfig
  readonly staticSignal: StaticSignal
  /** Called every few hundred directories with running totals. */
  readonly onProgress?: (progress: ScanProgress) => void
}

export interface ScanResult {
  readonly folders: ReadonlyArray<ScannedFolder>
  /** Directories not registered: hidden, ignored, excluded, not included, or below `min_files`. */
  readonly excluded: number
  /** Regular files counted in the walked folders. */
  readonly files: number
  /** Folders that could not be read (permissions), relative to the root, sorted. */
  readonly unreadable: ReadonlyArray<string>
}

export interface WalkerShape {
  readonly scan: (options: ScanOptions) => Effect.Effect<ScanResult, ScanError, CommandExecutor.CommandExecutor>
}

export class Walker extends Context.Tag("@trail/scheduler/Walker")<Walker, WalkerShape>() {}

/** Directories walked on one thread before a large walk hands half of what is pending to a worker. */
export const HAND_OFF_AFTER = 256

/** Directories walked between two turns of the event loop (where signals are handled). */
export const WALK_PART = 1024

/** One turn of the event loop (a macrotask: signal handlers run before it resumes). */
const turn = Effect.async<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})

const scanError = (root: string, error: unknown) =>
  new ScanError({ path: root, detail: error instanceof Error ? error.message : String(error) })

/**
 * The worker of a shared walk and what it sent that this thread has not read yet. Listens from
 * the moment the worker starts: a message with no listener is lost (a worker that finished while
 * this thread still walked was once waited for forever, under load).
 */
interface Helper {
  readonly worker: Worker
  readonly flags: Int32Array
  readonly inbox: Array<ToWalker>
  /** Resumes a wait for the inbox. */
  wake: (() => void) | null
  /** `frames` messages posted to the worker, counting its first frames (workerData). */
  jobs: number
  /** The `jobs` of the last `idle` read: the worker is idle when it equals {@link jobs}. */
  idleAt: number
}

const startHelper = (
  workerScript: string,
  settings: WalkSettings,
  frames: Array<Frame>,
  found: (result: WalkResult) => void
): Helper | null => {
  const flags = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT))
  const job: WorkerJob = { settings, frames, flags }
  let worker: Worker
  try {
    worker = new Worker(workerScript, { workerData: job })
  } catch {
    return null
  }
  const helper: Helper = { worker, flags, inbox: [], wake: null, jobs: 1, idleAt: 0 }
  const receive = (message: ToWalker) => {
    // Unpacked as they arrive (between two parts of this thread's walk), not all at the end.
    if (message._tag === "found" || message._tag === "idle") found(unpack(message.result))
    if (message._tag === "found") return
    helper.inbox.push(message)
    helper.wake?.()
  }
  worker.on("message", receive)
  worker.once("error", (error) => receive({ _tag: "failed", error: error.message }))
  worker.once("exit", () => receive({ _tag: "failed", error: "the walk worker exited" }))
  return helper
}

/** The next message of the helper's inbox, waiting for one. */
const nextMessage = (helper: Helper) =>
  Effect.async<ToWalker>((resume) => {
    const take = () => {
      const message = helper.inbox.shift()
      if (message === undefined) return false
      helper.wake = null
      resume(Effect.succeed(message))
      return true
    }
    if (!take()) helper.wake = () => void take()
    return Effect.sync(() => {
      helper.wake = null
    })
  })

/** The worker failed (or exited) before the walk ended: the walk restarts on this thread alone. */
class HelperFailed extends Data.TaggedError("HelperFailed")<{ readonly error: string }> {}

/**
 * Walks the tree; with `workerScript`, from {@link HAND_OFF_AFTER} directories on, shares it with
 * a worker thread (see {@link ToWalker}). A worker that fails costs only time: the walk is made
 * again on this thread.
 */
const walkTree = (options: ScanOptions, workerScript: string | undefined): Effect.Effect<WalkResult, ScanError> => {
  let helper: Helper | null = null
  const settings: WalkSettings = {
    root: options.root,
    respectGitignore: options.scan.respect_gitignore,
    measureBytes: options.staticSignal === "bytes",
    minFiles: options.scan.min_files,
    include: options.scan.include,
    exclude: options.scan.exclude
  }
  const progress = options.onProgress
  const parts: Array<WalkResult> = []
  let visitedBefore = 0
  let filesBefore = 0
  /** Once the worker runs: gives it half of what is pending when it is idle. */
  let shareWithHelper: ((pending: Array<Frame>) => Array<Frame>) | null = null
  /** The hand-off after each directory of this thread's walk. */
  const handOff = (pending: Array<Frame>, visited: number): Array<Frame> => {
    if (shareWithHelper !== null) return shareWithHelper(pending)
    if (workerScript === undefined || visitedBefore + visited < HAND_OFF_AFTER) return pending
    const { keep, given } = halve(pending)
    const started = startHelper(workerScript, settings, given, (result) => parts.push(result))
    if (started === null) {
      workerScript = undefined // no worker: keep walking everything here
      return pending
    }
    helper = started
    shareWithHelper = shareWhenAsked(started.flags, WORKER_HUNGRY, (frames) => {
      started.jobs++
      started.worker.postMessage({ _tag: "frames", frames } satisfies ToWorker)
    })
    return keep
  }
  /** Walks `frames` on this thread, in parts of WALK_PART directories with a turn between them. */
  const walkHere = (frames: Array<Frame>) =>
    Effect.gen(function* () {
      let pending = frames
      while (pending.length > 0) {
        if (parts.length > 0) yield* turn
        const [visited0, files0] = [visitedBefore, filesBefore]
        const part = yield* Effect.try({
          try: () =>
            walkFrames(settings, pending, {
              handOff,
              maxDirectories: WALK_PART,
              ...(progress === undefined
                ? {}
                : {
                    onDirectory: (visited, files) =>
                      (visited0 + visited) % 500 === 0 &&
                      progress({ folders: visited0 + visited, files: files0 + files })
                  })
            }),
          catch: (error) => scanError(options.root, error)
        })
        parts.push(part)
        pending = part.pending
        visitedBefore += part.visited
        filesBefore += part.files
      }
    })
  const shared = Effect.gen(function* () {
    yield* walkHere([{ rel: "", sources: [] }])
    // This thread ran dry: ask the worker for frames until it is idle too.
    for (let current = helper; current !== null && current.idleAt !== current.jobs;) {
      Atomics.store(current.flags, MAIN_HUNGRY, 1)
      const message = yield* nextMessage(current)
      if (message._tag === "failed") return yield* new HelperFailed({ error: message.error })
      if (message._tag === "idle") current.idleAt = message.jobs
      else if (message._tag === "frames") yield* walkHere(message.frames)
    }
    return mergeResults(parts)
  })
  const stop = Effect.sync(() => {
    helper?.worker.postMessage({ _tag: "stop" } satisfies ToWorker)
    helper?.worker.unref()
  })
  return shared.pipe(
    Effect.ensuring(stop),
    Effect.catchTag("HelperFailed", () => walkTree(options, undefined)),
    // Interrupted (SIGINT) while this thread still walks: the worker's part is not wanted either.
    Effect.onInterrupt(() => Effect.promise(() => helper?.worker.terminate() ?? Promise.resolve(0)))
  )
}

/** Commits per folder (files directly in it) over the last 90 days, from one `git log` pass. */
const churnByFolder = (root: string) =>
  Command.make("git", "log", "--since=90.days.ago", "--no-renames", "--format=%x00", "--name-only", "--relative").pipe(
    Command.workingDirectory(root),
    Command.string,
    Effect.mapError((error) => new ScanError({ path: root, detail: `git log failed: ${error.message}` })),
    Effect.map((output) => {
      const churn = new Map<string, number>()
      for (const commit of output.split("\0")) {
        const touched = new Set<string>()
        for (const line of commit.split("\n")) {
          const file = line.trim()
          if (file === "") continue
          const slash = file.lastIndexOf("/")
          touched.add(slash < 0 ? "." : file.slice(0, slash))
        }
        for (const folder of touched) churn.set(folder, (churn.get(folder) ?? 0) + 1)
      }
      return churn
    })
  )

const isGitRepository = (root: string) =>
  Command.make("git", "rev-parse", "--is-inside-work-tree").pipe(
    Command.workingDirectory(root),
    Command.string,
    Effect.map((out) => out.trim() === "true"),
    Effect.orElseSucceed(() => false)
  )

/** A walker; with `workerScript` (the path of the bundled walk worker) large walks use two threads. */
export const make = (workerScript?: string): WalkerShape => ({
  scan: (options) =>
    Effect.gen(function* () {
      const walked = yield* walkTree(options, workerScript)
      // The walked folders are the scan's (churn 0): at 200k folders a copy costs tens of MB.
      const folders: ReadonlyArray<ScannedFolder> = walked.folders
      const result: ScanResult = {
        folders,
        excluded: walked.excluded,
        files: walked.files,
        unreadable: walked.unreadable
      }
      if (options.staticSignal !== "churn") return result
      if (!(yield* isGitRepository(options.root))) {
        return yield* new ScanError({
          path: options.root,
          detail: 'strategy.static_signal = "churn" needs a git repository; use "file_count" or "bytes" here'
        })
      }
      const churn = yield* churnByFolder(options.root)
      return { ...result, folders: folders.map((f) => ({ ...f, churn: churn.get(f.path) ?? 0 })) }
    })
})

/** A single-threaded walker. */
export const layer = Layer.succeed(Walker, make())

/** A walker that hands half of a large walk to the worker at `workerScript`. */
export const layerWithWorker = (workerScript: string) => Layer.succeed(Walker, make(workerScript))
