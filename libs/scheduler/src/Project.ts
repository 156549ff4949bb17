/**
 * The root and its files: finding the root (walking up to a folder holding `.trail/`, as git
 * finds `.git`), loading `.trail.toml`, and laying out `.trail/` on `trail init`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import {
  ConfigError,
  FolderPath,
  PathOutsideRoot,
  RootNotFound,
  ScanError,
  defaultConfig,
  exampleConfig,
  normalizeFolderPath,
  type TrailConfig
} from "@trail/domain"
import { Database } from "@trail/store"
import { Effect, Either, Option } from "effect"
import * as ConfigText from "./ConfigText.js"

export const STATE_DIR = ".trail"
export const CONFIG_FILE = ConfigText.CONFIG_FILE
export const EXAMPLE_CONFIG_FILE = ".trail.toml.example"
export const DATABASE_FILE = "state.db"

/** Only `kinds/` (project worker kinds) under `.trail/` is meant to be committed. */
export const STATE_GITIGNORE =
  "# Written by `trail init`: state is local; only project worker kinds are committed.\n*\n!.gitignore\n!kinds/\n"

/** The absolute paths of a root's files. */
export interface Project {
  readonly root: string
  readonly stateDir: string
  readonly databaseFile: string
  readonly configFile: string
}

export const projectAt = (path: Path.Path, root: string): Project => ({
  root,
  stateDir: path.join(root, STATE_DIR),
  databaseFile: path.join(root, STATE_DIR, DATABASE_FILE),
  configFile: path.join(root, CONFIG_FILE)
})

const hasStateDir = (fs: FileSystem.FileSystem, path: Path.Path, dir: string) =>
  fs.stat(path.join(dir, STATE_DIR)).pipe(
    Effect.map((info) => info.type === "Directory"),
    Effect.orElseSucceed(() => false)
  )

/** The nearest folder at or above `start` that holds `.trail/`. */
const nearestRoot = (fs: FileSystem.FileSystem, path: Path.Path, start: string) =>
  Effect.gen(function* () {
    let dir = path.resolve(start)
    for (;;) {
      if (yield* hasStateDir(fs, path, dir)) return Option.some(dir)
      const parent = path.dirname(dir)
      if (parent === dir) return Option.none<string>()
      dir = parent
    }
  })

/**
 * The root's folder, as {@link findRoot} describes. A subfolder of a root named by `--root` or
 * `TRAIL_ROOT` is refused, naming the root above it: it is most likely a mistake, and walking up
 * would silently act on a root nobody named.
 */
const findRootDir = (options: { readonly explicit: Option.Option<string>; readonly cwd: string }) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    if (Option.isSome(options.explicit)) {
      const root = path.resolve(options.cwd, options.explicit.value)
      if (yield* hasStateDir(fs, path, root)) return projectAt(path, root)
      const above = yield* nearestRoot(fs, path, path.dirname(root))
      return yield* new RootNotFound({
        cwd: root,
        explicit: true,
        ...Option.match(above, { onNone: () => ({}), onSome: (nearest) => ({ nearest }) })
      })
    }
    const found = yield* nearestRoot(fs, path, options.cwd)
    if (Option.isSome(found)) return projectAt(path, found.value)
    return yield* new RootNotFound({ cwd: options.cwd })
  })

/**
 * Finds the root. With `explicit` (from `--root` or `TRAIL_ROOT`) that folder must hold `.trail/`;
 * otherwise the nearest folder at or above `cwd` that holds one. Fails with {@link RootNotFound},
 * or with a StoreError when the root's `.trail/state.db` is missing (`missing`: run `trail init`)
 * or empty (`corrupt`): only `trail init` creates a store, so that a deleted or truncated
 * database never reads as a fresh one whose sweeps are all complete.
 */
export const findRoot = (options: { readonly explicit: Option.Option<string>; readonly cwd: string }) =>
  Effect.flatMap(findRootDir(options), (project) => {
    const problem = Database.storeFileProblem(project.databaseFile)
    return problem === null ? Effect.succeed(project) : Effect.fail(problem)
  })

/** Parses and validates `.trail.toml` text. `file` names the file in errors. */
export const parseConfig = (text: string, file: string): Effect.Effect<TrailConfig, ConfigError> =>
  Effect.suspend(() => ConfigText.parse(text, file))

/** The largest `.trail.toml` trail reads: 1 MiB. */
export const MAX_CONFIG_BYTES = ConfigText.MAX_CONFIG_BYTES

/**
 * Loads `<root>/.trail.toml`; a missing file means every default. Only a regular file (or a
 * link to one) of at most {@link MAX_CONFIG_BYTES} is read: a FIFO would block the read forever
 * and a link to `/dev/zero` would never end, so both are a {@link ConfigError} before any read.
 */
export const loadConfig = (project: Project) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const unreadable = (reason: string) => new ConfigError({ file: CONFIG_FILE, key: "", value: "", reason })
    const info = yield* fs.stat(project.configFile).pipe(
      Effect.map(Option.some),
      Effect.catchAll((error) =>
        error._tag === "SystemError" && error.reason === "NotFound"
          ? Effect.succeed(Option.none<FileSystem.File.Info>())
          : unreadable(`cannot be read: ${error.message}`)
      )
    )
    if (Option.isNone(info)) return defaultConfig
    if (info.value.type !== "File")
      return yield* unreadable(`is not a regular file (it is a ${info.value.type}); make it a plain text file`)
    if (Number(info.value.size) > MAX_CONFIG_BYTES)
      return yield* unreadable(`is ${Number(info.value.size)} bytes; at most ${MAX_CONFIG_BYTES} (1 MiB) are read`)
    const text = yield* fs
      .readFileString(project.configFile)
      .pipe(Effect.mapError((error) => unreadable(`cannot be read: ${error.message}`)))
    return yield* parseConfig(text, CONFIG_FILE)
  })

/**
 * Creates `.trail/` with its `.gitignore`, and writes `.trail.toml.example` when no
 * `.trail.toml` exists. Returns whether the example was written. Fails with a ScanError, creating
 * nothing, when the root is not an existing folder (a mistyped `--root` must not make one).
 */
export const layOut = (project: Project) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fail = (error: { readonly message: string }) => new ScanError({ path: project.root, detail: error.message })
    const root = yield* fs.stat(project.root).pipe(Effect.option)
    if (root._tag === "None" || root.value.type !== "Directory") {
      return yield* new ScanError({ path: project.root, detail: "the root is not an existing folder" })
    }
    // 0700: the state holds session messages and worker output.
    yield* fs.makeDirectory(project.stateDir, { recursive: true, mode: 0o700 }).pipe(Effect.mapError(fail))
    yield* fs.writeFileString(path.join(project.stateDir, ".gitignore"), STATE_GITIGNORE).pipe(Effect.mapError(fail))
    if (yield* fs.exists(project.configFile).pipe(Effect.orElseSucceed(() => false))) return false
    yield* fs.writeFileString(path.join(project.root, EXAMPLE_CONFIG_FILE), exampleConfig).pipe(Effect.mapError(fail))
    return true
  })

/**
 * Turns a `--path` argument into a {@link FolderPath}: an absolute path must lie inside the
 * root; a relative one is taken relative to the root and normalised (`./src/api/` → `src/api`).
 * Backslashes are separators (`.\src\api` → `src/api`), as in the Rust trail, so that paths
 * written on Windows name the same folder.
 */
export const toFolderPath = (
  path: Path.Path,
  root: string,
  raw: string
): Either.Either<FolderPath, PathOutsideRoot> => {
  let relative = raw.replaceAll("\\", "/")
  if (path.isAbsolute(relative)) {
    relative = path.relative(root, relative).split(path.sep).join("/")
    if (relative === "") relative = "."
    if (path.isAbsolute(relative) || relative === ".." || relative.startsWith("../")) {
      return Either.left(new PathOutsideRoot({ path: raw, reason: "is outside the root" }))
    }
  }
  return normalizeFolderPath(relative).pipe(
    Either.mapBoth({
      onLeft: (reason) => new PathOutsideRoot({ path: raw, reason }),
      onRight: (normalised) => FolderPath.make(normalised, { disableValidation: true })
    })
  )
}
