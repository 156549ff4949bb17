/**
 * Embedded migrations (no files loaded by path at run time, so they survive bundling), run by
 * `@effect/sql-sqlite-node`'s migrator inside one store transaction ({@link Database.transaction}:
 * the write lock, retried on SQLITE_BUSY) so that concurrent first runs serialise; the migrator
 * records them in `effect_sql_migrations`. `PRAGMA user_version` records the latest applied
 * migration so that a process whose database is current skips the migrator entirely (a CLI call
 * must start fast). Names and DDL never change once released: stores made by older trails
 * migrate from where they are.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteMigrator from "@effect/sql-sqlite-node/SqliteMigrator"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { StoreError } from "@trail/domain"
import { Effect, Layer, Schema } from "effect"
import { Database, toStoreError } from "./Database.js"

/**
 * The indexes of the inbox projection's tables (migration 0009), as `[name, DDL]`: a rebuild of
 * the projection drops them, bulk-inserts, and creates them again (one sort each instead of a
 * B-tree insert per row). `inbox_items_attention` serves attention order (not cooling down: by
 * class, oldest first) in index order with `LIMIT n`.
 */
export const INBOX_INDEXES: ReadonlyArray<readonly [name: string, ddl: string]> = [
  [
    "inbox_items_attention",
    `CREATE INDEX inbox_items_attention ON inbox_items (rank, since, event_id) WHERE dismissed = 0`
  ],
  ["inbox_items_subject", `CREATE INDEX inbox_items_subject ON inbox_items (subject_type, subject_id)`],
  [
    "inbox_items_skipped",
    `CREATE INDEX inbox_items_skipped ON inbox_items (skipped_until) WHERE skipped_until IS NOT NULL`
  ],
  ["inbox_sessions_pane", `CREATE INDEX inbox_sessions_pane ON inbox_sessions (socket, pane) WHERE pane IS NOT NULL`]
]

/**
 * A sweep's done / skipped / leased counters follow its items' status changes inside the
 * statement that changes them (migration 0002; created again by 0012, which rebuilds work_items).
 */
const COUNTERS_TRIGGER = `CREATE TRIGGER work_items_counters AFTER UPDATE OF status ON work_items
      WHEN OLD.status <> NEW.status
      BEGIN
        UPDATE sweeps SET
          done = done + (NEW.status = 'done') - (OLD.status = 'done'),
          skipped = skipped + (NEW.status = 'skipped') - (OLD.status = 'skipped'),
          leased = leased + (NEW.status = 'leased') - (OLD.status = 'leased')
        WHERE id = NEW.sweep_id;
      END`

export const migrations = {
  "0001_coverage": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Folders registered by `trail init`. A folder that a rescan no longer finds keeps its row
    // (and its history) with present = 0 and is left out of new sweeps.
    yield* sql`CREATE TABLE folders (
      id INTEGER PRIMARY KEY,
      path TEXT NOT NULL UNIQUE,
      file_count INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      churn INTEGER NOT NULL DEFAULT 0,
      present INTEGER NOT NULL DEFAULT 1,
      scanned_at INTEGER NOT NULL
    )`
    // current_sweep_id: the task's latest sweep, active or complete.
    yield* sql`CREATE TABLE tasks (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      current_sweep_id INTEGER
    )`
    // done / skipped / leased are the O(1) counters of the hot path; pending = total - the rest.
    // They can be rebuilt from work_items (`trail gc --reconcile`).
    yield* sql`CREATE TABLE sweeps (
      id INTEGER PRIMARY KEY,
      task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
      number INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('active', 'complete')),
      strategy TEXT NOT NULL,
      total INTEGER NOT NULL,
      done INTEGER NOT NULL DEFAULT 0,
      skipped INTEGER NOT NULL DEFAULT 0,
      leased INTEGER NOT NULL DEFAULT 0,
      opened_at INTEGER NOT NULL,
      closed_at INTEGER,
      UNIQUE (task_id, number)
    )`
    // score is frozen when the sweep opens.
    yield* sql`CREATE TABLE work_items (
      id INTEGER PRIMARY KEY,
      sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
      folder_id INTEGER NOT NULL REFERENCES folders(id),
      path TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'done', 'skipped')),
      score REAL NOT NULL,
      lease_owner TEXT,
      lease_expires_at INTEGER,
      completed_at INTEGER
    )`
    yield* sql`CREATE UNIQUE INDEX work_items_by_path ON work_items (sweep_id, path)`
    // The claim reads the best pending item of a sweep from this index: no scan, no sort.
    yield* sql`CREATE INDEX work_items_pending ON work_items (sweep_id, score DESC, id) WHERE status = 'pending'`
    // Reclaiming expired leases reads only leased items, oldest expiry first.
    yield* sql`CREATE INDEX work_items_leased ON work_items (sweep_id, lease_expires_at) WHERE status = 'leased'`
    // The append-only history of completions.
    yield* sql`CREATE TABLE visits (
      id INTEGER PRIMARY KEY,
      task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
      sweep INTEGER NOT NULL,
      folder_id INTEGER NOT NULL REFERENCES folders(id),
      path TEXT NOT NULL,
      agent TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('done', 'skipped')),
      reason TEXT,
      found INTEGER,
      at INTEGER NOT NULL
    )`
    yield* sql`CREATE INDEX visits_by_task ON visits (task_id, at)`
    // Per task and folder: when it was last visited and its decayed findings. Can be rebuilt
    // from visits; kept so that opening a sweep never reads the whole history.
    yield* sql`CREATE TABLE folder_memory (
      task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
      folder_id INTEGER NOT NULL REFERENCES folders(id),
      last_visited_at INTEGER,
      outcome REAL NOT NULL DEFAULT 0,
      outcome_at INTEGER,
      PRIMARY KEY (task_id, folder_id)
    ) WITHOUT ROWID`
  }),
  "0002_counter_triggers": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // A sweep's done / skipped / leased counters follow its items' status changes inside the
    // statement that changes them, so the hot path never issues a counter update of its own and
    // the counters cannot drift from the items (total is set when the sweep opens).
    yield* sql.unsafe(COUNTERS_TRIGGER)
  }),
  "0003_visit_memory_trigger": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // folder_memory.last_visited_at is a projection of visits: every visit moves it, in the
    // statement that records the visit. (Decayed findings need the configured half-life and are
    // written by the scheduler when a visit reports findings.)
    yield* sql`CREATE TRIGGER visits_memory AFTER INSERT ON visits
      BEGIN
        INSERT INTO folder_memory (task_id, folder_id, last_visited_at) VALUES (NEW.task_id, NEW.folder_id, NEW.at)
          ON CONFLICT (task_id, folder_id) DO UPDATE SET last_visited_at = excluded.last_visited_at;
      END`
  }),
  "0004_workers_events": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The event log: append-only and authoritative (SPEC "Storage"). data is a JSON object.
    yield* sql`CREATE TABLE events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      type TEXT NOT NULL,
      subject_type TEXT NOT NULL,
      subject_id TEXT NOT NULL,
      data TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX events_by_subject ON events (subject_type, subject_id, id)`
    // Workers: each row is the fold of its worker.* events, written in the same transaction as
    // the event it folds (so it can be rebuilt from events; it exists so reads stay O(1)).
    yield* sql`CREATE TABLE workers (
      id TEXT PRIMARY KEY,
      seq INTEGER NOT NULL UNIQUE,
      kind TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('spawning', 'running', 'needs_input', 'ready', 'failed', 'lost', 'cancelled')),
      text TEXT NOT NULL,
      task TEXT,
      path TEXT,
      parent TEXT REFERENCES workers(id),
      depth INTEGER NOT NULL,
      substrate TEXT NOT NULL CHECK (substrate IN ('tmux', 'process')),
      pid INTEGER,
      cwd TEXT NOT NULL,
      worktree TEXT,
      worktree_base TEXT,
      max_duration_ms INTEGER,
      lease_owner TEXT,
      lease_expires_at INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      finished_at INTEGER,
      exit_status INTEGER,
      question TEXT,
      reason TEXT,
      result TEXT,
      todos TEXT NOT NULL DEFAULT '[]',
      respawn_of TEXT
    )`
    yield* sql`CREATE INDEX workers_live ON workers (state) WHERE state IN ('spawning', 'running', 'needs_input')`
    yield* sql`CREATE INDEX workers_by_parent ON workers (parent) WHERE parent IS NOT NULL`
    // The one supervisor of this root: a lease renewed while it runs (a second one is refused).
    yield* sql`CREATE TABLE supervisor (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      owner TEXT NOT NULL,
      pid INTEGER NOT NULL,
      host TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      lease_expires_at INTEGER NOT NULL
    )`
  }),
  "0005_inbox": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The inbox projection (SPEC §3): rebuilt from events by \`trail inbox --rebuild\`. item is a
    // ReviewItem as JSON; inbox_state holds the id of the last event folded, and the sessions and
    // worker facts the fold keeps.
    yield* sql`CREATE TABLE inbox_items (
      id TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      subject_type TEXT NOT NULL,
      subject_id TEXT NOT NULL,
      since INTEGER NOT NULL,
      item TEXT NOT NULL
    )`
    yield* sql`CREATE TABLE inbox_state (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      last_event_id INTEGER NOT NULL,
      sessions TEXT NOT NULL,
      workers TEXT NOT NULL
    )`
  }),
  "0006_worker_window": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // tmux's id of the worker's window (`@12`): unique on a tmux server that several roots share.
    yield* sql`ALTER TABLE workers ADD COLUMN window TEXT`
  }),
  "0007_task_strategy_completed_by": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The strategy last asked for with `--strategy` (null: strategy.default); the task's next
    // sweeps use it until another one is asked for.
    yield* sql`ALTER TABLE tasks ADD COLUMN strategy TEXT`
    // The agent that finished the item, so that a late report of another agent is refused
    // rather than dropped silently (also in visits; kept here so the check reads one row).
    yield* sql`ALTER TABLE work_items ADD COLUMN completed_by TEXT`
  }),
  "0008_checkpoints": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The checkpoint index (SPEC §4): each row is the fold of its checkpoint.* events, written in
    // the same transaction as the event, so it can be rebuilt from events (Checkpoints.rebuildIndex).
    // workers is a JSON string array; armed_at is set while `trail continue` has armed it for the
    // next Claude Code session of the root (at most one row at a time: the unique index below).
    yield* sql`CREATE TABLE checkpoints (
      id TEXT PRIMARY KEY,
      state TEXT NOT NULL CHECK (state IN ('saved', 'consumed', 'deleted', 'purged')),
      created_at INTEGER NOT NULL,
      title TEXT NOT NULL,
      once INTEGER NOT NULL CHECK (once IN (0, 1)),
      session TEXT,
      workers TEXT NOT NULL DEFAULT '[]',
      artifacts INTEGER NOT NULL,
      consumed_at INTEGER,
      continued_by TEXT,
      armed_at INTEGER
    )`
    yield* sql`CREATE UNIQUE INDEX checkpoints_armed ON checkpoints ((armed_at IS NOT NULL)) WHERE armed_at IS NOT NULL`
    yield* sql`CREATE INDEX checkpoints_consumed ON checkpoints (consumed_at) WHERE state = 'consumed'`
    // Full-text search over the artifacts of saved and consumed checkpoints (bm25 ranking): rebuilt
    // from the checkpoints' <id>.artifacts.json files with the index. unresolved is 1 for a failed
    // command, an error or a failure that no later success in its bundle answered; at is ms.
    yield* sql`CREATE VIRTUAL TABLE artifacts_fts USING fts5(
      checkpoint UNINDEXED,
      artifact UNINDEXED,
      kind UNINDEXED,
      title,
      text,
      unresolved UNINDEXED,
      at UNINDEXED,
      tokenize = 'unicode61'
    )`
  }),
  "0009_inbox_indexed": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The inbox projection (SPEC §3) kept so that a fold of k new events touches O(k) rows and a
    // read of n items reads n rows. Rebuildable from the event log (`trail inbox --rebuild`): the
    // 0005 tables are dropped and the first read folds the log again.
    yield* sql`DROP TABLE inbox_items`
    yield* sql`DROP TABLE inbox_state`
    // One row per item (`i<event_id>`); item is the ReviewItem as JSON, the other columns are the
    // ones it is found and ordered by: rank is the attention class (attentionRank), dismissed 0/1,
    // skipped_until ms or null.
    yield* sql`CREATE TABLE inbox_items (
      event_id INTEGER PRIMARY KEY,
      kind TEXT NOT NULL,
      rank INTEGER NOT NULL,
      subject_type TEXT NOT NULL,
      subject_id TEXT NOT NULL,
      headline TEXT NOT NULL,
      since INTEGER NOT NULL,
      dismissed INTEGER NOT NULL CHECK (dismissed IN (0, 1)),
      skipped_until INTEGER,
      item TEXT NOT NULL
    )`
    // The fold's sessions (session is the Session as JSON), found by id and by tmux pane.
    yield* sql`CREATE TABLE inbox_sessions (
      id TEXT PRIMARY KEY,
      socket TEXT,
      pane TEXT,
      session TEXT NOT NULL
    ) WITHOUT ROWID`
    for (const [, ddl] of INBOX_INDEXES) yield* sql.unsafe(ddl)
    // What the inbox remembers of a worker for its cards (WorkerCardInfo as JSON).
    yield* sql`CREATE TABLE inbox_workers (id TEXT PRIMARY KEY, info TEXT NOT NULL) WITHOUT ROWID`
    // Subjects (`session:<id>`, `worker:<id>`) whose agent session ended (InboxState.ended).
    yield* sql`CREATE TABLE inbox_ended (subject TEXT PRIMARY KEY) WITHOUT ROWID`
    yield* sql`CREATE TABLE inbox_state (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      last_event_id INTEGER NOT NULL
    )`
  }),
  "0010_search_workers": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Search's projection of workers' artifacts (SPEC §4: results, change sets and failures found
    // without a checkpoint) into artifacts_fts, rows with checkpoint NULL: rebuildable from the
    // event log (Search.rebuildWorkers, run by `trail search --rebuild`). search_state holds the id
    // of the last event folded; search_workers, for each respawned or failed worker, the worker it
    // respawns (respawn_of, so that a respawn's result resolves the failures before it) and the
    // rowids of its rows in artifacts_fts (a JSON integer array).
    yield* sql`CREATE TABLE search_state (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      last_event_id INTEGER NOT NULL
    )`
    yield* sql`CREATE TABLE search_workers (
      worker TEXT PRIMARY KEY,
      respawn_of TEXT,
      rowids TEXT NOT NULL DEFAULT '[]'
    )`
  }),
  "0011_list_order_pruned_items": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // `trail list` reads a sweep's items in score order from this index, page by page (keyset:
    // after the last score and id read), so `list --limit 100` reads 100 entries of a sweep of
    // any size. The claim keeps its smaller partial index of pending items (work_items_pending).
    yield* sql`CREATE INDEX work_items_by_score ON work_items (sweep_id, score DESC, id)`
    // When `trail gc` deleted the sweep's work items (history.keep_sweeps), or null. Its counters
    // and its visits stay; `gc --reconcile` leaves a pruned sweep's counters alone.
    yield* sql`ALTER TABLE sweeps ADD COLUMN items_pruned_at INTEGER`
  }),
  "0012_work_items_claim_order": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Opening a sweep inserts one item per folder (200,000 at scale) and must take well under a
    // second; each foreign-key probe and each index of this table is paid per item. So:
    // - no foreign keys: items are inserted only by opening a sweep, from the folders and the
    //   sweep of that statement, and deleted only with their sweep (reset, gc's pruning), by
    //   explicit deletes in the same transaction; folders are never deleted (absent: present = 0);
    // - ids in claim order: a sweep's items are inserted best first (score DESC, then path) in
    //   one statement and nothing is inserted into a sweep later, so within a sweep `id` order
    //   is claim order and list order, and a sweep's items are the ids first_item_id ..
    //   last_item_id of its row. The pending index holds (sweep_id, id) (appended in order, no
    //   score) and `list` reads that id range: work_items_by_score (0011) is gone.
    // The items of stores made before are copied in that order (sweep by sweep, score DESC,
    // then id, the claim order they had), so they get new ids; nothing refers to an item's id.
    yield* sql`CREATE TABLE work_items_0012 (
      id INTEGER PRIMARY KEY,
      sweep_id INTEGER NOT NULL,
      folder_id INTEGER NOT NULL,
      path TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'done', 'skipped')),
      score REAL NOT NULL,
      lease_owner TEXT,
      lease_expires_at INTEGER,
      completed_at INTEGER,
      completed_by TEXT
    )`
    yield* sql`INSERT INTO work_items_0012
        (sweep_id, folder_id, path, status, score, lease_owner, lease_expires_at, completed_at, completed_by)
      SELECT sweep_id, folder_id, path, status, score, lease_owner, lease_expires_at, completed_at, completed_by
      FROM work_items ORDER BY sweep_id, score DESC, id`
    // Dropping the table drops its indexes and its trigger (work_items_counters, 0002).
    yield* sql`DROP TABLE work_items`
    yield* sql`ALTER TABLE work_items_0012 RENAME TO work_items`
    yield* sql`CREATE UNIQUE INDEX work_items_by_path ON work_items (sweep_id, path)`
    // The claim reads the first pending item of a sweep in id (claim) order from this index.
    yield* sql`CREATE INDEX work_items_pending ON work_items (sweep_id, id) WHERE status = 'pending'`
    yield* sql`CREATE INDEX work_items_leased ON work_items (sweep_id, lease_expires_at) WHERE status = 'leased'`
    yield* sql.unsafe(COUNTERS_TRIGGER)
    // The ids of the sweep's items (both null when it has none: pruned, or emptied by hand).
    yield* sql`ALTER TABLE sweeps ADD COLUMN first_item_id INTEGER`
    yield* sql`ALTER TABLE sweeps ADD COLUMN last_item_id INTEGER`
    yield* sql`UPDATE sweeps SET first_item_id = r.first, last_item_id = r.last
      FROM (SELECT sweep_id, min(id) AS first, max(id) AS last FROM work_items GROUP BY sweep_id) AS r
      WHERE r.sweep_id = sweeps.id`
  }),
  "0013_work_items_by_folder": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Opening a sweep inserts its items in claim order (0012), so an index on any other key of
    // work_items takes its entries in random order: at 200,000 items the unique
    // work_items_by_path (sweep_id, path) cost about as much as the rows themselves. A sweep's
    // item at a folder is found instead through this table, keyed like the index it replaces but
    // by the folder's integer id (its path is folders' unique key), and filled by the opening
    // with a second statement in key order: every entry is appended. done / skip / release /
    // renew go path → folders.id → (sweep_id, folder_id) → item id; the cold paths that need a
    // sweep's items (reset, gc's pruning and reconcile) find them here by sweep.
    yield* sql`CREATE TABLE work_items_by_folder (
      sweep_id INTEGER NOT NULL,
      folder_id INTEGER NOT NULL,
      item_id INTEGER NOT NULL,
      PRIMARY KEY (sweep_id, folder_id)
    ) WITHOUT ROWID`
    yield* sql`INSERT INTO work_items_by_folder (sweep_id, folder_id, item_id)
      SELECT sweep_id, folder_id, id FROM work_items ORDER BY sweep_id, folder_id`
    yield* sql`DROP INDEX work_items_by_path`
  }),
  "0014_work_items_claim_cursor": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Opening a sweep writes one row per folder (200,000 at scale; issue 14's target is < 1 s for
    // the `next` that opens it), and two costs of each row are gone (docs/benchmarks.md):
    // - The status CHECK is checked for every row written, and `status IN ('pending', …)` in a
    //   CHECK costs ~0.6 µs a row in SQLite 3.53 (the IN list is set up again for each row):
    //   ~0.13–0.2 s of the open, more than the rows themselves. The same condition written with
    //   `=` and `OR` costs ~0.03 µs. A CHECK cannot be altered in place: the table is copied with
    //   its ids (claim order, the sweeps' id ranges and work_items_by_folder's item ids stay true).
    // - work_items_pending (sweep_id, id), an entry per item at the open: the claim finds the
    //   first never-claimed item from a cursor instead (sweeps.claim_cursor: every item of the
    //   sweep with an id up to it has left pending at least once; null: none has, i.e.
    //   first_item_id - 1), scanning the table's own key from it, and an item that goes back
    //   to pending (release, an expired lease reclaimed) is found in work_items_returned, which
    //   holds only those. The claim leases the lower id of the two: the first pending item in
    //   claim order, as before.
    yield* sql`CREATE TABLE work_items_0014 (
      id INTEGER PRIMARY KEY,
      sweep_id INTEGER NOT NULL,
      folder_id INTEGER NOT NULL,
      path TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status = 'pending' OR status = 'leased' OR status = 'done' OR status = 'skipped'),
      score REAL NOT NULL,
      lease_owner TEXT,
      lease_expires_at INTEGER,
      completed_at INTEGER,
      completed_by TEXT
    )`
    yield* sql`INSERT INTO work_items_0014
        (id, sweep_id, folder_id, path, status, score, lease_owner, lease_expires_at, completed_at, completed_by)
      SELECT id, sweep_id, folder_id, path, status, score, lease_owner, lease_expires_at, completed_at, completed_by
      FROM work_items ORDER BY id`
    // Dropping the table drops its indexes (work_items_pending goes) and its trigger.
    yield* sql`DROP TABLE work_items`
    yield* sql`ALTER TABLE work_items_0014 RENAME TO work_items`
    yield* sql`CREATE INDEX work_items_leased ON work_items (sweep_id, lease_expires_at) WHERE status = 'leased'`
    yield* sql.unsafe(COUNTERS_TRIGGER)
    yield* sql`ALTER TABLE sweeps ADD COLUMN claim_cursor INTEGER`
    // Existing sweeps keep a null cursor (every item ahead of it): nothing is returned yet.
    yield* sql`CREATE TABLE work_items_returned (
      sweep_id INTEGER NOT NULL,
      item_id INTEGER NOT NULL,
      PRIMARY KEY (sweep_id, item_id)
    ) WITHOUT ROWID`
    // Kept by a trigger, inside the statement that moves the item, so that every writer keeps it
    // (a trail older than this migration still running included): an item is in it while it is
    // pending again. Deletes of items (reset, gc's pruning) delete their sweep's entries too.
    yield* sql`CREATE TRIGGER work_items_returns AFTER UPDATE OF status ON work_items
      WHEN (OLD.status = 'pending') <> (NEW.status = 'pending')
      BEGIN
        INSERT OR IGNORE INTO work_items_returned (sweep_id, item_id)
          SELECT NEW.sweep_id, NEW.id WHERE NEW.status = 'pending';
        DELETE FROM work_items_returned WHERE OLD.status = 'pending' AND sweep_id = NEW.sweep_id AND item_id = NEW.id;
      END`
  }),
  "0015_work_items_leased_by_folder": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Opening a sweep no longer fills work_items_by_folder (0013): its 200,000 entries, a second
    // sort of every item, were ~0.15 s of the `next` that opens a sweep at scale. A leased item
    // (what done / skip / release / renew find nearly always: the folder an agent was handed) is
    // found by folder in this index, which holds leased items only: an entry goes in with the
    // claim's own UPDATE and out with the item's next status change, in any trail's statements.
    // Only an item that is not leased (done by path ahead of the claim, released, a lease that
    // expired) is looked up in work_items_by_folder, whose entries for the sweep are then built,
    // once (the fallback trails since 0013 already have for a sweep without entries).
    yield* sql`CREATE INDEX work_items_leased_by_folder ON work_items (sweep_id, folder_id) WHERE status = 'leased'`
  })
} satisfies Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>

/** The id of the newest migration; `PRAGMA user_version` equals it on a current database. */
export const LATEST_MIGRATION = Object.keys(migrations).length

/**
 * The package's migrator without its schema dump: `SqliteMigrator.run` is this engine plus an
 * optional `sqlite3 .schema` dump, which trail never asks for and which would make every store
 * user provide FileSystem, Path and CommandExecutor.
 */
const migrator = SqliteMigrator.make({})

/**
 * Applies the migrations up to number `last` that the store lacks, and sets `PRAGMA user_version`
 * to `last`, in one store transaction. {@link migrate} with the latest; tests build the stores
 * older trails made with an earlier one.
 */
export const migrateThrough = (last: number) =>
  Effect.gen(function* () {
    const database = yield* Database
    const sql = yield* SqlClient.SqlClient
    const upTo = Object.fromEntries(Object.entries(migrations).filter(([name]) => Number.parseInt(name, 10) <= last))
    yield* database.transaction(
      Effect.gen(function* () {
        yield* migrator({ loader: SqliteMigrator.fromRecord(upTo) }).pipe(
          Effect.mapError((error) => (error._tag === "MigrationError" ? toStoreError(error) : error)),
          // The migrator reports a failed migration's DDL as a defect: a full disk or a corrupt
          // file during an upgrade is still the store's error, with its reason.
          Effect.catchAllDefect((defect) => Effect.fail(toStoreError(defect)))
        )
        // The migrator takes a failed bookkeeping insert for another process's run and succeeds
        // with nothing done: mark the store current only when every migration is recorded.
        const recorded = yield* SqlSchema.findAll({
          Request: Schema.Void,
          Result: Schema.Struct({ latest: Schema.NullOr(Schema.Int) }),
          execute: () => sql`SELECT max(migration_id) AS latest FROM effect_sql_migrations`
        })(undefined)
        if ((recorded[0]?.latest ?? 0) < last)
          return yield* new StoreError({ reason: "busy", detail: "the store's migrations did not all apply; retrying" })
        yield* sql.unsafe(`PRAGMA user_version = ${last}`)
      })
    )
  })

/**
 * Brings the schema up to date. Cheap when it already is: one `PRAGMA user_version` read.
 * Fails with a StoreError (corrupt, read-only, …) when the database cannot be read or migrated.
 */
export const migrate = Effect.gen(function* () {
  const database = yield* Database
  const version = yield* database.read((db) => Number(db.pluck("PRAGMA user_version")))
  if (version >= LATEST_MIGRATION) return
  yield* migrateThrough(LATEST_MIGRATION)
})

/** {@link migrate} as a layer: the one place a store is brought up to date. */
export const layer = Layer.effectDiscard(migrate)
