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
 * The walk uses synchronous `node:fs` calls: it is one tight loop of readdir + stat measured
 * against `find` (docs/benchmarks.md), and async file-system calls would cost a multiple.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { ScanError, type ScanConfig, type StaticSignal } from "@trail/domain"
import { Context, Effect, Layer } from "effect"
import ignore, { type Ignore } from "ignore"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import picomatch from "picomatch"
import type { ScannedFolder } from "./CoverageStore.js"

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
  /** Regular files seen in registered and unregistered (but walked) folders. */
  readonly files: number
}

export interface WalkerShape {
  readonly scan: (options: ScanOptions) => Effect.Effect<ScanResult, ScanError, CommandExecutor.CommandExecutor>
}

export class Walker extends Context.Tag("@trail/scheduler/Walker")<Walker, WalkerShape>() {}

interface IgnoreLevel {
  /** Folder holding the ignore file(s), relative to the root ("" for the root). */
  readonly base: string
  readonly rules: Ignore
}

const IGNORE_FILES = [".gitignore", ".ignore"] as const

/** trail's own files at the root are configuration, not work for agents. */
const OWN_ROOT_FILES: ReadonlySet<string> = new Set([".trail.toml", ".trail.toml.example"])

const readIgnoreLevel = (absDir: string, base: string, names: ReadonlySet<string>): IgnoreLevel | null => {
  let rules: Ignore | null = null
  for (const file of IGNORE_FILES) {
    if (!names.has(file)) continue
    try {
      const text = fs.readFileSync(nodePath.join(absDir, file), "utf8")
      rules = (rules ?? ignore()).add(text)
    } catch {
      // An unreadable ignore file ignores nothing, as in git.
    }
  }
  return rules === null ? null : { base, rules }
}

/** True when the deepest level with an opinion ignores `rel` (relative to the root). */
const isIgnored = (levels: ReadonlyArray<IgnoreLevel>, rel: string, isDir: boolean): boolean => {
  for (let i = levels.length - 1; i >= 0; i--) {
    const level = levels[i]!
    const local = level.base === "" ? rel : rel.slice(level.base.length + 1)
    const verdict = level.rules.test(isDir ? `${local}/` : local)
    if (verdict.ignored) return true
    if (verdict.unignored) return false
  }
  return false
}

interface Frame {
  readonly rel: string
  readonly levels: ReadonlyArray<IgnoreLevel>
}

const walk = (options: ScanOptions): Omit<ScanResult, "folders"> & { folders: Array<ScannedFolder> } => {
  const { root, scan } = options
  const excludeMatch = scan.exclude.length > 0 ? picomatch(scan.exclude as Array<string>, { dot: true }) : null
  const includeMatch = scan.include.length > 0 ? picomatch(scan.include as Array<string>, { dot: true }) : null
  const folders: Array<ScannedFolder> = []
  let excluded = 0
  let files = 0
  let visited = 0
  const stack: Array<Frame> = [{ rel: "", levels: [] }]
  while (stack.length > 0) {
    const frame = stack.pop()!
    const absDir = frame.rel === "" ? root : nodePath.join(root, frame.rel)
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(absDir, { withFileTypes: true })
    } catch (error) {
      if (frame.rel === "") throw error
      excluded++ // unreadable folder: nothing to hand out
      continue
    }
    let levels = frame.levels
    if (scan.respect_gitignore) {
      const names = new Set<string>()
      for (const entry of entries) if (entry.name === ".gitignore" || entry.name === ".ignore") names.add(entry.name)
      const level = names.size > 0 ? readIgnoreLevel(absDir, frame.rel, names) : null
      if (level !== null) levels = [...levels, level]
    }
    let fileCount = 0
    let bytes = 0
    for (const entry of entries) {
      const rel = frame.rel === "" ? entry.name : `${frame.rel}/${entry.name}`
      if (entry.isDirectory()) {
        if (entry.name.startsWith(".")) {
          excluded++
          continue
        }
        if ((levels.length > 0 && isIgnored(levels, rel, true)) || (excludeMatch !== null && excludeMatch(rel))) {
          excluded++
          continue
        }
        stack.push({ rel, levels })
      } else if (entry.isFile()) {
        if (frame.rel === "" && OWN_ROOT_FILES.has(entry.name)) continue
        if (levels.length > 0 && isIgnored(levels, rel, false)) continue
        fileCount++
        const stat = fs.statSync(nodePath.join(absDir, entry.name), { throwIfNoEntry: false })
        if (stat !== undefined) bytes += stat.size
      }
    }
    files += fileCount
    const path = frame.rel === "" ? "." : frame.rel
    if (fileCount >= scan.min_files && (includeMatch === null || includeMatch(path))) {
      folders.push({ path, fileCount, bytes, churn: 0 })
    } else if (frame.rel !== "") {
      excluded++
    }
    visited++
    if (options.onProgress !== undefined && visited % 500 === 0) options.onProgress({ folders: visited, files })
  }
  folders.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { folders, excluded, files }
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

export const make: WalkerShape = {
  scan: (options) =>
    Effect.gen(function* () {
      const result = yield* Effect.try({
        try: () => walk(options),
        catch: (error) =>
          new ScanError({ path: options.root, detail: error instanceof Error ? error.message : String(error) })
      })
      if (options.staticSignal !== "churn") return result
      if (!(yield* isGitRepository(options.root))) {
        return yield* new ScanError({
          path: options.root,
          detail: 'strategy.static_signal = "churn" needs a git repository; use "file_count" or "bytes" here'
        })
      }
      const churn = yield* churnByFolder(options.root)
      return { ...result, folders: result.folders.map((f) => ({ ...f, churn: churn.get(f.path) ?? 0 })) }
    })
}

export const layer = Layer.succeed(Walker, make)
