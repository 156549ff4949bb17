/**
 * The reader of the hook-rate bench (bench/hook-rate.ts), bundled and started by it:
 * `node reader.cjs ROOT`. It follows the inbox as `trail supervise` and the TUI do: the live
 * event log (a watch of the state folder) wakes it on each burst of commits, and each wake reads
 * the visible items through the public Inbox service (which first folds what it has not seen).
 * Prints `ready` once it follows, then for every item it sees for the first time
 * `seen <item id> <ms since epoch at the end of that read>`, and `read <ms the read took>` per
 * read. Ends on SIGTERM.
 */
import * as path from "node:path"
import { defaultConfig, EventLog } from "@trail/domain"
import { EventLogLive, Live } from "@trail/supervisor"
import { Inbox } from "@trail/workers"
import { Effect, Layer, Queue } from "effect"

const root = process.argv[2] ?? process.cwd()
const stateDir = path.join(root, ".trail")
const settings: Live.RootSettings = {
  project: {
    root,
    stateDir,
    databaseFile: path.join(stateDir, "state.db"),
    configFile: path.join(root, ".trail.toml")
  },
  config: defaultConfig,
  trailCommand: [process.execPath],
  userKindsDir: path.join(root, "no-user-kinds")
}

const seen = new Set<string>()
const follow = Effect.gen(function* () {
  const log = yield* EventLog
  const inbox = yield* Inbox.Inbox
  const changes = yield* log.subscribe
  yield* inbox.items()
  process.stdout.write("ready\n")
  for (;;) {
    yield* Queue.take(changes)
    yield* Queue.takeAll(changes)
    const before = performance.now()
    const items = yield* inbox.items()
    const now = Date.now()
    const lines = [`read ${(performance.now() - before).toFixed(1)}`]
    for (const item of items)
      if (!seen.has(item.id)) {
        seen.add(item.id)
        lines.push(`seen ${item.id} ${now}`)
      }
    process.stdout.write(`${lines.join("\n")}\n`)
  }
})

void Effect.runPromise(
  Effect.scoped(follow).pipe(
    Effect.provide(
      EventLogLive.layer({ stateDir }).pipe(Layer.provideMerge(Live.inboxLayer(settings)), Layer.provide(Live.outside))
    )
  )
)
