/**
 * Changes of a root's state database, as a stream: what a live view (`trail inbox --tui`) redraws
 * on. Watches `.trail/` (not the file: SQLite's WAL and SHM change beside it, and a watched file
 * replaced by a rename would go quiet) through @effect/platform `FileSystem.watch`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Duration, Effect, Stream } from "effect"

/** The quiet time after a write before a change is signalled: one commit touches several files. */
export const DEBOUNCE = Duration.millis(50)

/**
 * One signal per burst of changes to `state.db`, `state.db-wal` or `state.db-shm` in `stateDir`,
 * after `quiet` without one. Other files of the folder are ignored. Fails with the watcher's
 * PlatformError when the folder cannot be watched.
 */
export const changes = (stateDir: string, quiet: Duration.DurationInput = DEBOUNCE) =>
  Stream.unwrap(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      return fs.watch(stateDir).pipe(
        Stream.filter((event) => path.basename(event.path).startsWith("state.db")),
        Stream.debounce(quiet),
        Stream.as(undefined)
      )
    })
  )
