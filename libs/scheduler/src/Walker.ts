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
 * The walk (walk.ts) is synchronous `node:fs`: one tight loop of readdir + stat, measured
 * against `find` in docs/benchmarks.md. A large walk shares its pending folders with a worker
 * thread so that both cores issue syscalls. The walk on this thread runs in parts of
 * {@link WALK_PART} directories with a turn of the event loop between them, so that SIGINT and
 * SIGTERM stop `trail init` at once however large the tree.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { ScanError, type ScanConfig, type StaticSignal } from "@trail/domain"
import { Context, Effect, Layer } from "effect"
import { Worker } from "node:worker_threads"
import type { ScannedFolder } from "./CoverageStore.js"
import { mergeResults, walkFrames, type Frame, type WalkResult, type WalkSettings } from "./walk.js"

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

/** The part of the walk given to a worker, and the worker (null until a hand-off happens). */
interface HandOff {
  frames: Array<Frame> | null
  worker: Worker | null
  /** The worker's answer: its result, or null when it failed (its frames are walked here). */
  answer: Promise<WalkResult | null> | null
}

/**
 * Listens for the worker's answer from the moment it starts: a worker that finishes before this
 * thread's own walk does posts its result while nothing awaits it yet, and a `message` event
 * with no listener is lost (the walk then waited forever; seen under load).
 */
const answerOf = (worker: Worker): Promise<WalkResult | null> =>
  new Promise((resolve) => {
    worker.once("message", (message: { readonly result?: WalkResult }) => resolve(message.result ?? null))
    worker.once("error", () => resolve(null))
    worker.once("exit", () => resolve(null))
  })

const awaitWorker = (settings: WalkSettings, frames: Array<Frame>, answer: Promise<WalkResult | null>) =>
  Effect.flatMap(
    Effect.promise(() => answer),
    (result): Effect.Effect<WalkResult, ScanError> =>
      result !== null
        ? Effect.succeed(result)
        : Effect.try({ try: () => walkFrames(settings, frames), catch: (error) => scanError(settings.root, error) })
  )

const walkTree = (options: ScanOptions, workerScript: string | undefined): Effect.Effect<WalkResult, ScanError> => {
  const handOff: HandOff = { frames: null, worker: null, answer: null }
  return Effect.gen(function* () {
    const settings: WalkSettings = {
      root: options.root,
      respectGitignore: options.scan.respect_gitignore,
      measureBytes: options.staticSignal === "bytes",
      minFiles: options.scan.min_files,
      include: options.scan.include,
      exclude: options.scan.exclude
    }
    const progress = options.onProgress
    const give = (pending: Array<Frame>, visited: number): Array<Frame> => {
      if (workerScript === undefined || handOff.frames !== null || visited < HAND_OFF_AFTER) return pending
      const keep: Array<Frame> = []
      const given: Array<Frame> = []
      pending.forEach((frame, i) => (i % 2 === 0 ? given : keep).push(frame))
      try {
        handOff.worker = new Worker(workerScript, { workerData: { settings, frames: given } })
        handOff.answer = answerOf(handOff.worker)
      } catch {
        handOff.frames = [] // no worker: keep walking everything here
        return pending
      }
      handOff.frames = given
      return keep
    }
    const parts: Array<WalkResult> = []
    let pending: Array<Frame> = [{ rel: "", sources: [] }]
    let visitedBefore = 0
    let filesBefore = 0
    while (pending.length > 0) {
      if (parts.length > 0) yield* turn
      const [visited0, files0] = [visitedBefore, filesBefore]
      const part = yield* Effect.try({
        try: () =>
          walkFrames(settings, pending, {
            handOff: (frames, visited) => give(frames, visited0 + visited),
            maxDirectories: WALK_PART,
            ...(progress === undefined
              ? {}
              : {
                  onDirectory: (visited, files) =>
                    (visited0 + visited) % 500 === 0 && progress({ folders: visited0 + visited, files: files0 + files })
                })
          }),
        catch: (error) => scanError(options.root, error)
      })
      parts.push(part)
      pending = part.pending
      visitedBefore += WALK_PART
      filesBefore += part.files
    }
    if (handOff.answer === null || handOff.frames === null) return mergeResults(parts)
    const theirs = yield* awaitWorker(settings, handOff.frames, handOff.answer)
    return mergeResults([...parts, theirs])
  }).pipe(
    // Interrupted (SIGINT) while this thread still walks: the worker's part is not wanted either.
    Effect.onInterrupt(() => Effect.promise(() => handOff.worker?.terminate() ?? Promise.resolve(0)))
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
