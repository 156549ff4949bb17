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
  return { folders, excluded, files, unreadable, pending: stack }
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
