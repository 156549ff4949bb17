/**
 * The tree walk behind `trail init`: finds the folders of a root and measures each one.
 *
 * - Honours `.gitignore` and `.ignore` files at every level (`scan.respect_gitignore`), with
 *   git's precedence: the deepest file that has an opinion about a path decides.
 * - Skips hidden directories (`.git`, `.trail`, …) and never follows symlinked directories.
 * - `scan.exclude` globs prune a folder and everything below it; when `scan.include` is
 *   non-empty only matching folders are registered (the walk still descends everywhere).
 * - Records per folder its direct regular-file count and their total bytes (trail's own
 *   `.trail.toml` and `.trail.toml.example` at the root are not counted), and with
 *   `static_signal = "churn"` the number of commits in the last 90 days that touched a file
 *   directly in it (one `git log` pass).
 *
 * The walk (walk.ts) is synchronous `node:fs`: one tight loop of readdir + stat, measured
 * against `find` in docs/benchmarks.md. A large walk shares its pending folders with a worker
 * thread so that both cores issue syscalls.
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
}

export interface WalkerShape {
  readonly scan: (options: ScanOptions) => Effect.Effect<ScanResult, ScanError, CommandExecutor.CommandExecutor>
}

export class Walker extends Context.Tag("@trail/scheduler/Walker")<Walker, WalkerShape>() {}

/** Directories walked on one thread before a large walk hands half of what is pending to a worker. */
export const HAND_OFF_AFTER = 256

const scanError = (root: string, error: unknown) =>
  new ScanError({ path: root, detail: error instanceof Error ? error.message : String(error) })

/** The part of the walk given to a worker, and the worker (null until a hand-off happens). */
interface HandOff {
  frames: Array<Frame> | null
  worker: Worker | null
}

/** Waits for the worker's part; walks it here instead if the worker fails. */
const awaitWorker = (settings: WalkSettings, frames: Array<Frame>, worker: Worker) =>
  Effect.async<WalkResult, ScanError>((resume) => {
    const walkHere = () => {
      try {
        resume(Effect.succeed(walkFrames(settings, frames)))
      } catch (error) {
        resume(Effect.fail(scanError(settings.root, error)))
      }
    }
    worker.once("message", (message: { readonly result?: WalkResult }) =>
      message.result === undefined ? walkHere() : resume(Effect.succeed(message.result))
    )
    worker.once("error", walkHere)
    return Effect.promise(() => worker.terminate())
  })

/**
 * Walks the root. With `workerScript` (the bundled walkWorker), a walk that is still going after
 * {@link HAND_OFF_AFTER} directories gives every other pending directory to a worker thread.
 */
const walkTree = (options: ScanOptions, workerScript: string | undefined): Effect.Effect<WalkResult, ScanError> =>
  Effect.gen(function* () {
    const settings: WalkSettings = {
      root: options.root,
      respectGitignore: options.scan.respect_gitignore,
      minFiles: options.scan.min_files,
      include: options.scan.include,
      exclude: options.scan.exclude
    }
    const progress = options.onProgress
    const handOff: HandOff = { frames: null, worker: null }
    const give = (pending: Array<Frame>, visited: number): Array<Frame> => {
      if (workerScript === undefined || handOff.frames !== null || visited < HAND_OFF_AFTER) return pending
      const keep: Array<Frame> = []
      const given: Array<Frame> = []
      pending.forEach((frame, i) => (i % 2 === 0 ? given : keep).push(frame))
      try {
        handOff.worker = new Worker(workerScript, { workerData: { settings, frames: given } })
      } catch {
        handOff.frames = [] // no worker: keep walking everything here
        return pending
      }
      handOff.frames = given
      return keep
    }
    const own = yield* Effect.try({
      try: () =>
        walkFrames(settings, [{ rel: "", sources: [] }], {
          handOff: give,
          ...(progress === undefined
            ? {}
            : { onDirectory: (visited, files) => visited % 500 === 0 && progress({ folders: visited, files }) })
        }),
      catch: (error) => scanError(options.root, error)
    })
    if (handOff.worker === null || handOff.frames === null) return mergeResults([own])
    const theirs = yield* awaitWorker(settings, handOff.frames, handOff.worker)
    return mergeResults([own, theirs])
  })

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
      const folders = walked.folders.map((f): ScannedFolder => ({ ...f, churn: 0 }))
      const result: ScanResult = { folders, excluded: walked.excluded, files: walked.files }
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
