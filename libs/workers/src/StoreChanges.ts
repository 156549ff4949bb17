/**
 * Changes of a root's state database, as a stream: what a live view (`trail inbox --tui`) redraws
 * on. Watches `.trail/` (not the file: SQLite's WAL and SHM change beside it, and a watched file
 * replaced by a rename would go quiet) through {@link Wakes.wakes}.
 */
import * as Path from "@effect/platform/Path"
import { Duration, Effect, LogLevel, Stream } from "effect"
import * as Wakes from "./Wakes.js"

/** The quiet time after a write before a change is signalled: one commit touches several files. */
export const DEBOUNCE = Duration.millis(50)

/**
 * One signal once the folder is watched (a change made before then is read at it), then one per
 * burst of changes to `state.db`, `state.db-wal` or `state.db-shm` in `stateDir`, each after
 * `quiet` without another. Other files of the folder are ignored. A folder that cannot be watched
 * is logged (Debug: the view redraws on its own timer too), told to `onStop`, and gives the first
 * signal only.
 */
export const changes = (
  stateDir: string,
  options: { readonly quiet?: Duration.DurationInput; readonly onStop?: Wakes.WakeOptions["onStop"] } = {}
) =>
  Stream.unwrap(
    Effect.map(Path.Path, (path) =>
      Wakes.wakes({
        dir: stateDir,
        accept: (file) => path.basename(file).startsWith("state.db"),
        unwatchable: LogLevel.Debug,
        ...(options.onStop === undefined ? {} : { onStop: options.onStop })
      }).pipe(Stream.debounce(options.quiet ?? DEBOUNCE), Stream.as(undefined))
    )
  )
