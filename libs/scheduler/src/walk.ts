/**
 * The synchronous tree walk shared by the {@link Walker} service and its worker thread
 * (walkWorker.ts). Plain data in and out (no Effect) so that a pending part of the walk can be
 * handed to another thread: a {@link Frame} carries its ignore rules as text.
 *
 * Rules (see Walker.ts): `.gitignore` / `.ignore` at every level with git's precedence (the
 * deepest file with an opinion decides), hidden directories and hidden files skipped, symlinked
 * directories not followed, `exclude` globs prune, `include` globs filter what is registered,
 * `min_files`. Patterns are matched by Glob.ts, which cannot backtrack exponentially.
 */
import * as fs from "node:fs"
import { compileGlobs, compileIgnore, type Glob, type IgnoreRules } from "./Glob.js"

export interface WalkSettings {
  /** Absolute, normalised path of the root. */
  readonly root: string
  readonly respectGitignore: boolean
  /**
   * Whether to measure each folder's total bytes: a stat per file, a third of the walk's system
   * calls. Only `static_signal = "bytes"` reads them (Walker.ts); otherwise bytes are 0.
   */
  readonly measureBytes: boolean
  readonly minFiles: number
  readonly include: ReadonlyArray<string>
  readonly exclude: ReadonlyArray<string>
}

/** The ignore files of one folder, as text (so a frame can cross to a worker thread). */
export interface IgnoreSource {
  /** Folder holding the files, relative to the root ("" for the root). */
  readonly base: string
  readonly texts: ReadonlyArray<string>
}

/** Part of a walk: what it found, and the folders it left to walk (see `maxDirectories`). */
export interface WalkPart extends WalkResult {
  readonly pending: Array<Frame>
  /** Directories read (an unreadable one does not count). */
  readonly visited: number
}

/** A folder still to walk and the ignore rules in force above it. */
export interface Frame {
  readonly rel: string
  readonly sources: ReadonlyArray<IgnoreSource>
}

/** A folder as the walk measured it: a ScannedFolder whose churn (from git, not the walk) is 0. */
export interface WalkedFolder {
  readonly path: string
  readonly fileCount: number
  /** Total bytes of its direct files; 0 unless {@link WalkSettings.measureBytes}. */
  readonly bytes: number
  readonly churn: 0
}

export interface WalkResult {
  readonly folders: Array<WalkedFolder>
  readonly excluded: number
  readonly files: number
  /** Folders (relative paths) that could not be read and were left out. */
  readonly unreadable: Array<string>
}

const IGNORE_FILES: ReadonlyArray<string> = [".gitignore", ".ignore"]

interface Level {
  readonly base: string
  readonly rules: IgnoreRules
}

/** Compiled ignore rules, cached per source so each file is parsed once per thread. */
const compiled = new WeakMap<IgnoreSource, Level>()
const levelOf = (source: IgnoreSource): Level => {
  let level = compiled.get(source)
  if (level === undefined) {
    level = { base: source.base, rules: compileIgnore(source.texts) }
    compiled.set(source, level)
  }
  return level
}

/** True when the deepest level with an opinion ignores `rel` (relative to the root). */
const isIgnored = (sources: ReadonlyArray<IgnoreSource>, rel: string, isDir: boolean): boolean => {
  for (let i = sources.length - 1; i >= 0; i--) {
    const source = sources[i]
    if (source === undefined) continue // i is in range; the index type does not know it
    const level = levelOf(source)
    const local = level.base === "" ? rel : rel.slice(level.base.length + 1)
    const verdict = level.rules.test(local, isDir)
    if (verdict !== null) return verdict === "ignored"
  }
  return false
}

/**
 * Whether `include` registers the root `.`: when a pattern matches `.`, or matches every folder
 * (`**`, `**\/*`: segments of only `*` and `**`), as in the Rust trail.
 */
const includesRoot = (patterns: ReadonlyArray<string>, include: Glob): boolean =>
  include.matches(".") ||
  patterns.some((p) => p.split("/").every((segment) => segment === "**" || segment === "*") && p.includes("**"))

/** Larger ignore files are skipped (as unreadable ones are): 1 MiB. */
const MAX_IGNORE_FILE_BYTES = 1024 * 1024

const readIgnoreSource = (absDir: string, base: string, entries: ReadonlyArray<fs.Dirent>): IgnoreSource | null => {
  const texts: Array<string> = []
  for (const entry of entries) {
    if (!IGNORE_FILES.includes(entry.name)) continue
    try {
      // Only a regular file: reading a FIFO (or a link to /dev/zero) would block this thread,
      // and with it every signal, forever.
      const file = `${absDir}/${entry.name}`
      const info = fs.statSync(file, { throwIfNoEntry: false })
      if (info === undefined || !info.isFile() || info.size > MAX_IGNORE_FILE_BYTES) continue
      texts.push(fs.readFileSync(file, "utf8"))
    } catch {
      // An unreadable ignore file ignores nothing, as in git.
    }
  }
  return texts.length === 0 ? null : { base, texts }
}

/**
 * Walks from `frames` (depth first). After every directory, `handOff` may take part of the
 * pending stack (it returns the frames it did not take). With `maxDirectories`, stops after that
 * many directories and leaves what is still to walk in `frames` (so a caller can yield between
 * parts); otherwise walks everything. Throws only if the root itself cannot be read.
 */
export const walkFrames = (
  settings: WalkSettings,
  frames: Array<Frame>,
  options?: {
    readonly onDirectory?: (visited: number, files: number) => void
    readonly handOff?: (pending: Array<Frame>, visited: number) => Array<Frame>
    readonly maxDirectories?: number
  }
): WalkPart => {
  const excludeMatch = compileGlobs(settings.exclude)
  const includeMatch = compileGlobs(settings.include)
  const rootIncluded = includeMatch === null || includesRoot(settings.include, includeMatch)
  const folders: Array<WalkedFolder> = []
  const unreadable: Array<string> = []
  let excluded = 0
  let files = 0
  let visited = 0
  let stack = frames
  const limit = options?.maxDirectories ?? Infinity
  while (visited < limit) {
    const frame = stack.pop()
    if (frame === undefined) break
    const absDir = frame.rel === "" ? settings.root : `${settings.root}/${frame.rel}`
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(absDir, { withFileTypes: true })
    } catch (error) {
      if (frame.rel === "") throw error
      excluded++ // an unreadable folder: nothing to hand out, but `init` names it
      unreadable.push(frame.rel)
      continue
    }
    let sources = frame.sources
    if (settings.respectGitignore) {
      const own = readIgnoreSource(absDir, frame.rel, entries)
      if (own !== null) sources = [...sources, own]
    }
    let fileCount = 0
    let bytes = 0
    const prefix = frame.rel === "" ? "" : `${frame.rel}/`
    const dirPrefix = `${absDir}/`
    const ignoring = sources.length > 0
    const measureBytes = settings.measureBytes
    for (const entry of entries) {
      // This loop runs once per file of the tree: plain string concatenation, and relative
      // paths only where a rule needs one.
      if (entry.isDirectory()) {
        if (entry.name.startsWith(".")) {
          excluded++
          continue
        }
        const rel = prefix + entry.name
        if ((ignoring && isIgnored(sources, rel, true)) || (excludeMatch !== null && excludeMatch.matches(rel))) {
          excluded++
          continue
        }
        stack.push({ rel, sources })
      } else if (entry.isFile()) {
        // Hidden files (`.gitignore`, `.env`, and trail's own `.trail.toml`) are not work for
        // agents: they neither count nor make a folder, as hidden directories (the Rust trail's rule).
        if (entry.name.startsWith(".")) continue
        if (ignoring && isIgnored(sources, prefix + entry.name, false)) continue
        fileCount++
        if (measureBytes) {
          const stat = fs.statSync(dirPrefix + entry.name, { throwIfNoEntry: false })
          if (stat !== undefined) bytes += stat.size
        }
      }
    }
    files += fileCount
    const path = frame.rel === "" ? "." : frame.rel
    const included = includeMatch === null || (frame.rel === "" ? rootIncluded : includeMatch.matches(path))
    if (fileCount >= settings.minFiles && included) {
      folders.push({ path, fileCount, bytes, churn: 0 })
    } else if (frame.rel !== "") {
      excluded++
    }
    visited++
    options?.onDirectory?.(visited, files)
    if (options?.handOff !== undefined && stack.length > 1) stack = options.handOff(stack, visited)
  }
  return { folders, excluded, files, unreadable, pending: stack, visited }
}

/**
 * What the two threads of a shared walk (Walker.ts, walkWorker.ts) tell each other. Both walk
 * from a stack of frames and give half of theirs to the other when it runs dry: the work is
 * balanced to the end rather than split once (a split once left one thread idle for up to a
 * quarter of the walk). A thread asks by raising its flag in {@link SharedFlags}, which the other
 * reads after every directory (a message would wait for the end of the other's synchronous
 * walk); what it is given comes as a message.
 */
export type ToWalker =
  /** Frames for this thread, which had raised its flag. */
  | { readonly _tag: "frames"; readonly frames: Array<Frame> }
  /** What the worker found in its last {@link WORKER_PART} directories. */
  | { readonly _tag: "found"; readonly result: PackedResult }
  /**
   * The worker walked all it was given: what it found since its last `found`, and how many
   * `frames` it had received then (the first, in workerData, counts).
   */
  | { readonly _tag: "idle"; readonly result: PackedResult; readonly jobs: number }
  | { readonly _tag: "failed"; readonly error: string }

/** Directories the worker walks between two `found` messages: the main thread unpacks them as they come. */
export const WORKER_PART = 4096

/**
 * A {@link WalkResult} as it crosses threads: the paths in one string and the measures in two
 * transferable arrays. Structured-cloning 100,000 folder objects cost ~0.4–0.7 s of the two
 * threads' time; this form ~0.1 s, plus the objects built again on arrival.
 */
export interface PackedResult {
  /** Folder paths joined by NUL (which no path holds). */
  readonly paths: string
  readonly fileCounts: Float64Array<ArrayBuffer>
  readonly bytes: Float64Array<ArrayBuffer>
  readonly excluded: number
  readonly files: number
  readonly unreadable: Array<string>
}

export const pack = (result: WalkResult): PackedResult => {
  const n = result.folders.length
  const fileCounts = new Float64Array(n)
  const bytes = new Float64Array(n)
  const paths: Array<string> = []
  result.folders.forEach((folder, i) => {
    paths.push(folder.path)
    fileCounts[i] = folder.fileCount
    bytes[i] = folder.bytes
  })
  const { excluded, files, unreadable } = result
  return { paths: paths.join("\0"), fileCounts, bytes, excluded, files, unreadable }
}

export const unpack = (packed: PackedResult): WalkResult => {
  const folders: Array<WalkedFolder> = []
  if (packed.fileCounts.length > 0) {
    packed.paths.split("\0").forEach((path, i) => {
      folders.push({ path, fileCount: packed.fileCounts[i] ?? 0, bytes: packed.bytes[i] ?? 0, churn: 0 })
    })
  }
  return { folders, excluded: packed.excluded, files: packed.files, unreadable: packed.unreadable }
}

/** What Walker.ts posts to its worker: more frames, or the end of the walk. */
export type ToWorker = { readonly _tag: "frames"; readonly frames: Array<Frame> } | { readonly _tag: "stop" }

/** The worker's job (its workerData). */
export interface WorkerJob {
  readonly settings: WalkSettings
  readonly frames: Array<Frame>
  /** An Int32Array over a SharedArrayBuffer, indexed by {@link MAIN_HUNGRY} and {@link WORKER_HUNGRY}. */
  readonly flags: Int32Array
}

/** Slot of the flags raised (1) by the main thread when it has nothing left to walk; cleared by the worker as it gives. */
export const MAIN_HUNGRY = 0
/** Slot of the flags raised (1) by the worker when it is idle; cleared by the main thread as it gives. */
export const WORKER_HUNGRY = 1

/**
 * A `handOff` for {@link walkFrames}: when the other thread's `flag` is raised (and this thread has
 * at least two frames pending), lowers it, passes every other pending frame to `give` and keeps
 * the rest.
 */
export const shareWhenAsked =
  (flags: Int32Array, flag: number, give: (frames: Array<Frame>) => void) =>
  (pending: Array<Frame>): Array<Frame> => {
    if (Atomics.load(flags, flag) === 0 || Atomics.compareExchange(flags, flag, 1, 0) !== 1) return pending
    const { keep, given } = halve(pending)
    give(given)
    return keep
  }

/**
 * Every other pending frame to give away (the first, third, …: near the bottom of the stack are
 * the largest subtrees, so both halves get some), the rest to keep.
 */
export const halve = (pending: ReadonlyArray<Frame>): { keep: Array<Frame>; given: Array<Frame> } => {
  const keep: Array<Frame> = []
  const given: Array<Frame> = []
  pending.forEach((frame, i) => (i % 2 === 0 ? given : keep).push(frame))
  return { keep, given }
}

/** Merges results of parts of one walk, folders sorted by path. */
export const mergeResults = (parts: ReadonlyArray<WalkResult>): WalkResult => {
  const folders = parts.flatMap((p) => p.folders)
  folders.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return {
    folders,
    excluded: parts.reduce((n, p) => n + p.excluded, 0),
    files: parts.reduce((n, p) => n + p.files, 0),
    unreadable: parts.flatMap((p) => p.unreadable).sort()
  }
}
