/**
 * The supervisor's own rows (SPEC §2): the root's supervisor lock (table `supervisor`, one row)
 * and the tasks whose folders the fleet's slots hold. Written against `SqlClient` with rows
 * decoded by Schema, so it runs on any `@effect/sql` client.
 *
 * The lock is a lease: the holder renews `lease_expires_at` while it runs. Taking it is one
 * conditional upsert (compare-and-set on the holder seen), in the manner of @effect/cluster's
 * shard locks: two supervisors starting at once cannot both win.
 *
 * Errors: `SqlError` and `ParseError` are mapped to {@link StoreError}; {@link SupervisorRunning}
 * when a live supervisor holds the root.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { AgentId, Host, StoreError, SupervisorRunning, TaskName } from "@trail/domain"
import { Database } from "@trail/store"
import { Clock, Effect, Option, Schema } from "effect"
import { Processes, SupervisorLock } from "@trail/workers"

/** The agent id under which fleet slots claim folders before handing them to a worker. */
export const FLEET_AGENT = AgentId.make("trail-supervise")

const Take = Schema.Struct({
  owner: Schema.String,
  pid: Schema.Int,
  host: Schema.String,
  now: Schema.Number,
  expires: Schema.Number,
  /** The holder seen before (null: none): the row is taken only if it is still theirs. */
  previous: Schema.NullOr(Schema.String)
})

export class SupervisorStore extends Effect.Service<SupervisorStore>()("@trail/supervisor/SupervisorStore", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const database = yield* Database.Database
    const host = yield* Host
    const processes = yield* Processes.Processes

    const take = SqlSchema.findAll({
      Request: Take,
      Result: Schema.Struct({ owner: Schema.String }),
      execute: (r) => sql`
        INSERT INTO supervisor (id, owner, pid, host, started_at, lease_expires_at)
        VALUES (1, ${r.owner}, ${r.pid}, ${r.host}, ${r.now}, ${r.expires})
        ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, host = excluded.host,
          started_at = excluded.started_at, lease_expires_at = excluded.lease_expires_at
        WHERE supervisor.owner = ${r.previous}
        RETURNING owner`
    })
    const renew = SqlSchema.void({
      Request: Schema.Struct({ owner: Schema.String, expires: Schema.Number }),
      execute: (r) => sql`UPDATE supervisor SET lease_expires_at = ${r.expires} WHERE id = 1 AND owner = ${r.owner}`
    })
    const release = SqlSchema.void({
      Request: Schema.String,
      execute: (owner) => sql`DELETE FROM supervisor WHERE id = 1 AND owner = ${owner}`
    })
    const fleetClaimTasks = SqlSchema.findAll({
      Request: Schema.String,
      Result: Schema.Struct({ name: TaskName }),
      execute: (agent) => sql`
        SELECT DISTINCT t.name FROM tasks t JOIN work_items w ON w.sweep_id = t.current_sweep_id
        WHERE w.status = 'leased' AND w.lease_owner = ${agent} ORDER BY t.name`
    })

    /** This process's name as a lock holder: `<pid>@<hostname>`. */
    const owner = `${host.pid}@${host.hostname}`

    /** A holder that is not this process and still holds the root ({@link SupervisorLock.isLive}). */
    const live = (seen: SupervisorLock.Holder, now: number) =>
      seen.owner === owner
        ? Effect.succeed(false)
        : SupervisorLock.isLive(seen, now).pipe(
            Effect.provideService(Host, host),
            Effect.provideService(Processes.Processes, processes)
          )

    /** Takes the lock until now + `ttlMs`, or fails naming the live holder. */
    const acquire = (ttlMs: number): Effect.Effect<void, SupervisorRunning | StoreError> =>
      Effect.gen(function* () {
        // A race lost to another starting supervisor is seen on the next read: at most two rounds.
        for (let round = 0; ; round++) {
          const now = yield* Clock.currentTimeMillis
          const seen = yield* Effect.provideService(SupervisorLock.holder, SqlClient.SqlClient, sql)
          if (Option.isSome(seen) && (yield* live(seen.value, now)))
            return yield* new SupervisorRunning({
              pid: seen.value.pid,
              host: seen.value.host,
              since: seen.value.started_at
            })
          const taken = yield* take({
            owner,
            pid: host.pid,
            host: host.hostname,
            now,
            expires: now + ttlMs,
            previous: Option.match(seen, { onNone: () => null, onSome: (h) => h.owner })
          })
          if (taken.length === 1) return
          if (round >= 2)
            return yield* new StoreError({ reason: "busy", detail: "the supervisor lock kept changing hands" })
        }
      }).pipe(
        // BEGIN is deferred: a holder another process takes between our read and our write fails
        // the write with SQLITE_BUSY(_SNAPSHOT); the store's transaction retries it all, and the
        // re-read then names that holder. Also holds the store's write lock (Database.transaction).
        database.transaction
      )

    return {
      owner,
      acquire,
      /** Moves the lock's expiry to now + `ttlMs` (only while this process holds it). */
      renew: (ttlMs: number): Effect.Effect<void, StoreError> =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => renew({ owner, expires: now + ttlMs })).pipe(
          Database.autocommit
        ),
      /** Gives the lock up (only if this process holds it). */
      release: Database.autocommit(release(owner)),
      /** The tasks whose current sweep has a folder leased to {@link FLEET_AGENT}, by name. */
      fleetClaimTasks: fleetClaimTasks(FLEET_AGENT).pipe(
        Effect.map((rows) => rows.map((row) => row.name)),
        Database.orStoreError
      )
    }
  })
}) {}
