/**
 * The root's supervisor lock as others see it (SPEC §2): the one row of table `supervisor`, and
 * the one definition of "a supervisor holds this root", shared by `trail supervise` (which
 * refuses to start beside a live holder) and `trail doctor` (which reports it). Taking, renewing
 * and releasing the lock are the supervisor's own (apps/supervisor SupervisorStore).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Host } from "@trail/domain"
import { Effect, Schema } from "effect"
import { Processes } from "./Processes.js"

/** The lock's row: its holder (`<pid>@<hostname>`), since when (ms) and its lease's expiry (ms since the epoch). */
export const Holder = Schema.Struct({
  owner: Schema.String,
  pid: Schema.Int,
  host: Schema.String,
  started_at: Schema.Number,
  lease_expires_at: Schema.Number
})
export type Holder = typeof Holder.Type

/** The lock's holder, None when nobody holds it. Fails with SqlError, or ParseError for a row of another shape. */
export const holder = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  SqlSchema.findOne({
    Request: Schema.Void,
    Result: Holder,
    execute: () => sql`SELECT owner, pid, host, started_at, lease_expires_at FROM supervisor WHERE id = 1`
  })(undefined)
)

/**
 * Whether `seen` still holds the root at `now` (ms since the epoch, from the caller's Clock): its
 * lease has not expired and, when it holds it from this host ({@link Host}), its pid exists
 * ({@link Processes}). A holder on another host cannot be probed: its lease alone decides.
 */
export const isLive = (seen: Holder, now: number): Effect.Effect<boolean, never, Host | Processes> =>
  Effect.gen(function* () {
    if (seen.lease_expires_at <= now) return false
    const host = yield* Host
    if (seen.host !== host.hostname) return true
    const processes = yield* Processes
    return yield* processes.isAlive(seen.pid)
  })
