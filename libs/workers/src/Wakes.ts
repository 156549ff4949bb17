/**
 * Wakes for a reader of what other processes write into a folder: the one way trail watches a
 * folder (@effect/platform `FileSystem.watch`). Used by the exit wait (`Processes.waitForExit`),
 * the supervisor's store check, its event tail and the TUI's redraw (`StoreChanges`).
 *
 * - The watch starts before the first wake, so that a write after the reader's first read wakes
 *   it again: a write between a first read and a later watch raised no event and was seen only at
 *   the next fallback read. With Node's watch this holds as far as the platform lets us see (it
 *   subscribes after an asynchronous stat and says nothing when it has): a reader that must not
 *   miss a write keeps a fallback.
 * - Wakes are coalesced: while the reader reads, any number of file events make one more wake
 *   (a burst of 1,000 events is one or two reads, not 1,000).
 * - A folder that cannot be watched (gone, no inotify) is logged once and leaves the fallback:
 *   a wake every `fallback` on Effect's `Clock`, also covering file systems whose watches miss
 *   events.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Cause, Chunk, type Duration, Effect, Fiber, Layer, LogLevel, Option, Queue, Ref, Stream } from "effect"

/**
 * Why the reader is woken: `start` once the watch is up (read what is there), `watch` a file
 * event, `fallback` the periodic wake, `poke` a wake from {@link WakeOptions.also}.
 */
export type Wake = "start" | "watch" | "fallback" | "poke"

export interface WakeOptions {
  /** The folder watched. */
  readonly dir: string
  /** Which file events wake (by the changed file's path); default: every one. */
  readonly accept?: (path: string) => boolean
  /** The period of the fallback wake (Effect's `Clock`); none when absent. */
  readonly fallback?: Duration.DurationInput
  /** More wakes, from the reader's own process (a local write that need not wait for the watch). */
  readonly also?: Stream.Stream<void>
  /** The level of the line logged when the folder cannot be watched (default Warning). */
  readonly unwatchable?: LogLevel.LogLevel
  /**
   * Told why the watch stopped (it failed, or it ended), for a reader that shows it; the
   * fallback wakes go on.
   */
  readonly onStop?: (reason: string) => Effect.Effect<void>
}

/**
 * Which wake a coalesced burst reports: a file event first (its reader may have to wait for
 * another process's write to become visible), then the start, a poke, the fallback.
 */
const RANK: Record<Wake, number> = { watch: 3, start: 2, poke: 1, fallback: 0 }

/**
 * How many times the watch's fiber is given the turn to reach its first wait. It gets there in
 * one turn unless its set-up runs past Effect's operation budget for a turn.
 */
const START_TURNS = 100

/**
 * The wakes of {@link WakeOptions.dir}: `start` first (once the watch is up), then one wake per
 * burst of accepted file events, pokes and fallback periods, each burst reported as its
 * highest-ranked wake. Never fails; ends only when interrupted (the watch ends with it).
 *
 * "Up": the watch's fiber has reached its first wait. A watch that subscribes when its stream
 * starts (the test layer's) is then subscribed. Node's stats the folder first and subscribes
 * when the stat returns; the folder is stat'ed here too, after, so that this waits for that
 * round trip (the fallback covers a kernel that answers out of order).
 */
export const wakes = (options: WakeOptions): Stream.Stream<Wake, never, FileSystem.FileSystem> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const accept = options.accept ?? (() => true)
      const stopped = (reason: string) => (options.onStop === undefined ? Effect.void : options.onStop(reason))
      // The burst not read yet, and one signal for it: a sliding queue of one holds at most one.
      const pending = yield* Ref.make(Option.none<Wake>())
      const signal = yield* Queue.sliding<void>(1)
      const wake = (next: Wake) =>
        Ref.update(pending, (burst) =>
          Option.some(Option.match(burst, { onNone: () => next, onSome: (w) => (RANK[next] > RANK[w] ? next : w) }))
        ).pipe(Effect.zipRight(Queue.offer(signal, undefined)))

      const watch = yield* fs.watch(options.dir).pipe(
        Stream.filter((event) => accept(event.path)),
        // A chunk of events is one wake: the burst is coalesced before it reaches the queue.
        Stream.runForEachChunk((events) => (Chunk.isEmpty(events) ? Effect.void : wake("watch"))),
        Effect.zipRight(stopped(`the watch of ${options.dir} ended`)),
        Effect.catchAll((error) =>
          Effect.logWithLevel(
            options.unwatchable ?? LogLevel.Warning,
            `cannot watch ${options.dir}`,
            Cause.fail(error)
          ).pipe(Effect.zipRight(stopped(error.message)))
        ),
        Effect.forkScoped
      )
      yield* untilWaiting(watch)
      yield* Effect.ignore(fs.stat(options.dir))
      yield* untilWaiting(watch)

      yield* wake("start")
      const fallback = options.fallback
      if (fallback !== undefined)
        yield* Effect.sleep(fallback).pipe(Effect.zipRight(wake("fallback")), Effect.forever, Effect.forkScoped)
      if (options.also !== undefined)
        yield* options.also.pipe(
          Stream.runForEach(() => wake("poke")),
          Effect.forkScoped
        )
      return Stream.fromQueue(signal).pipe(
        Stream.mapEffect(() => Ref.getAndSet(pending, Option.none())),
        Stream.filterMap((burst) => burst)
      )
    })
  )

/** Gives `fiber` the turn until it waits (or has ended), at most {@link START_TURNS} times. */
const untilWaiting = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  Effect.gen(function* () {
    for (let turn = 0; turn < START_TURNS; turn++) {
      // A fiber's status is asked of the fiber: it answers once it waits or yields its turn.
      if ((yield* Fiber.status(fiber))._tag !== "Running") return
      yield* Effect.yieldNow()
    }
  })

/**
 * The shortest time (wall-clock ms) between two chunks of {@link watchCoalesced}: a stream of
 * file events is handed to Effect at most this often, a lone event at once.
 */
export const WATCH_GAP_MS = 20

/**
 * Node's `fs.watch` of `path` (a folder, or a file when `isDir` is false) with its file events
 * handed to Effect as chunks, one event per changed name, at most one chunk per
 * {@link WATCH_GAP_MS} (a first event after a quiet gap goes at the end of its turn of the event
 * loop): `change` is an Update, `rename` a Create when the name exists when the chunk goes, a
 * Remove when it does not, and a failure of the watch when `stat` cannot tell (as the platform's). Paths are the names Node reports, as @effect/platform-node's own watch gives them.
 * The gap is wall-clock time (Node's timers): it paces the other processes' writes, not ours.
 */
const watchCoalesced = (
  path: string,
  isDir: boolean,
  recursive: boolean
): Stream.Stream<FileSystem.WatchEvent, SystemError> =>
  Stream.asyncPush<FileSystem.WatchEvent, SystemError>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let pending = new Map<string, "change" | "rename">()
          let scheduled = false
          let flushed = Number.NEGATIVE_INFINITY
          const failed = (cause: unknown) =>
            emit.fail(
              new SystemError({
                module: "FileSystem",
                reason: "Unknown",
                method: "watch",
                pathOrDescriptor: path,
                description: cause instanceof Error ? cause.message : String(cause),
                cause
              })
            )
          /** A renamed name: Create when it exists, Remove when it does not, a failure when stat cannot tell. */
          const renamed = (name: string): FileSystem.WatchEvent | null => {
            try {
              fs.statSync(isDir ? nodePath.join(path, name) : path)
              return FileSystem.WatchEventCreate({ path: name })
            } catch (error) {
              if (error instanceof Error && "code" in error && error.code === "ENOENT")
                return FileSystem.WatchEventRemove({ path: name })
              failed(error)
              return null
            }
          }
          const flush = () => {
            scheduled = false
            flushed = performance.now()
            const turn = pending
            pending = new Map()
            const events: Array<FileSystem.WatchEvent> = []
            for (const [name, event] of turn) {
              const next = event === "change" ? FileSystem.WatchEventUpdate({ path: name }) : renamed(name)
              if (next === null) return
              events.push(next)
            }
            emit.array(events)
          }
          const watcher = fs.watch(path, { recursive }, (event, name) => {
            if (name === null || name === "") return
            // A rename in the turn wins over a change: it says whether the name still exists.
            if (pending.get(name) !== "rename") pending.set(name, event === "rename" ? "rename" : "change")
            if (scheduled) return
            scheduled = true
            const wait = flushed + WATCH_GAP_MS - performance.now()
            if (wait > 0) setTimeout(flush, wait)
            else setImmediate(flush)
          })
          watcher.on("error", failed)
          watcher.on("close", () => emit.end())
          return watcher
        }),
        (watcher) => Effect.sync(() => watcher.close())
      ),
    { bufferSize: "unbounded" }
  )

/**
 * The file watch of trail's Node platform (provided to `NodeFileSystem` by `Processes.live`):
 * {@link watchCoalesced}. @effect/platform-node's own watch hands Effect every file event: each
 * commit to the store writes its WAL twice, so 1,000 hook events a second were 2,000 passes
 * through a stream a second in every process that watches the store (~0.1–1 ms of CPU each on a
 * loaded machine), and a reader with its fair share of the machine did nothing else
 * (docs/benchmarks.md, issue 14).
 */
export const watchBackend = Layer.succeed(
  FileSystem.WatchBackend,
  FileSystem.WatchBackend.of({
    register: (path, stat, options) =>
      Option.some(watchCoalesced(path, stat.type === "Directory", options?.recursive ?? false))
  })
)
