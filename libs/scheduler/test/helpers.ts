import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { decodeConfig, type TrailConfig } from "@trail/domain"
import { Context, Effect, Either, Layer, Schema } from "effect"
import * as CoverageStore from "../src/CoverageStore.js"
import { Database } from "@trail/store"
import * as Project from "../src/Project.js"
import * as Scheduler from "../src/Scheduler.js"

/** A config decoded from a partial `.trail.toml` object (so tests use the real defaults). */
export const configOf = (raw: Record<string, unknown> = {}): TrailConfig => {
  const decoded = decodeConfig(raw, "test")
  if (Either.isLeft(decoded)) throw new Error(decoded.left.message)
  return decoded.right
}

/**
 * A temporary root holding `.trail/` and `files` (relative path → content).
 * Removed when the scope closes.
 */
export const makeRoot = (files: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const root = yield* fs.makeTempDirectoryScoped({ prefix: "trail-test-" })
    for (const [file, content] of Object.entries(files)) {
      yield* fs.makeDirectory(path.dirname(path.join(root, file)), { recursive: true })
      yield* fs.writeFileString(path.join(root, file), content)
    }
    const project = Project.projectAt(path, root)
    yield* fs.makeDirectory(project.stateDir)
    return project
  }).pipe(Effect.orDie)

/** The real scheduler (file-backed SQLite in `project`), scoped. */
export const makeScheduler = (project: Project.Project, config: TrailConfig = configOf()) =>
  Effect.map(Layer.build(Scheduler.layerFor({ project, config })), (ctx) => Context.get(ctx, Scheduler.Scheduler))

/** The real store on a file database in a fresh temp root, scoped. */
export const makeStore = Effect.gen(function* () {
  const project = yield* makeRoot()
  const ctx = yield* Layer.build(
    CoverageStore.layer.pipe(Layer.provideMerge(Database.layer({ filename: project.databaseFile })))
  )
  return {
    store: Context.get(ctx, CoverageStore.CoverageStore),
    database: Context.get(ctx, Database.Database),
    project
  }
})

/** `n` synthetic folders `area{i/100}/mod{i}` with `i + 1` files each. */
export const syntheticFolders = (n: number): Array<CoverageStore.ScannedFolder> =>
  Array.from({ length: n }, (_, i) => ({
    path: `area${Math.floor(i / 100)}/mod${i}`,
    fileCount: i + 1,
    bytes: 100 * (i + 1),
    churn: 0
  }))

export const openOptions: CoverageStore.OpenSweepOptions = {
  strategy: "weighted",
  alpha: 0.6,
  outcomeWeight: 0,
  halfLifeSecs: 604800,
  seed: 42,
  staticSignal: "file_count"
}

/**
 * Disagreements between work_items and work_items_by_folder (migration 0013), as `n`: items of a
 * sweep that has entries without their entry, plus entries whose item is gone or has another
 * sweep or folder. 0 when every sweep has all its entries or none (since 0015 a sweep gets them
 * when an item that is not leased is first looked up) and no entry is stale.
 */
export const BY_FOLDER_DRIFT_SQL = `SELECT
  (SELECT count(*) FROM work_items w
    WHERE EXISTS (SELECT 1 FROM work_items_by_folder e WHERE e.sweep_id = w.sweep_id)
      AND NOT EXISTS (SELECT 1 FROM work_items_by_folder b
        WHERE b.sweep_id = w.sweep_id AND b.folder_id = w.folder_id AND b.item_id = w.id))
  + (SELECT count(*) FROM work_items_by_folder b WHERE NOT EXISTS (SELECT 1 FROM work_items w
    WHERE w.id = b.item_id AND w.sweep_id = b.sweep_id AND w.folder_id = b.folder_id)) AS n`

/** {@link BY_FOLDER_DRIFT_SQL}'s count on `database`. */
export const byFolderDrift = (database: Context.Tag.Service<typeof Database.Database>) =>
  database.read((db) => Schema.decodeUnknownSync(Schema.Struct({ n: Schema.Int }))(db.get(BY_FOLDER_DRIFT_SQL)).n)
