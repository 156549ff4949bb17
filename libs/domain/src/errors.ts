/**
 * Public tagged errors. Every error carries the fields a caller needs to act on it; the CLI
 * turns each into `{"error":{"code","message"}}` with {@link errorCode} and {@link exitCodeOf}.
 */
import { Schema } from "effect"

/** A command was invoked wrongly (bad flag value, conflicting flags). Exit code 2. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String
}) {}

/**
 * No folder holding `.trail/` was found walking up from `cwd`; or, with `explicit`, the folder
 * named by `--root` / `TRAIL_ROOT` holds none (`nearest`: the root above it, if any).
 */
export class RootNotFound extends Schema.TaggedError<RootNotFound>()("RootNotFound", {
  cwd: Schema.String,
  explicit: Schema.optional(Schema.Boolean),
  nearest: Schema.optional(Schema.String)
}) {
  override get message() {
    if (this.explicit !== true)
      return `no trail root found at or above ${this.cwd}; run \`trail init\` there, or pass --root / set TRAIL_ROOT`
    const named = `--root / TRAIL_ROOT names ${this.cwd}, which is not a trail root (it holds no .trail/)`
    return this.nearest === undefined
      ? `${named}; run \`trail init\` there, or name the folder holding .trail/`
      : `${named}; it is inside the root ${this.nearest}: pass --root ${this.nearest} (or set TRAIL_ROOT to it)`
  }
}

/** `.trail.toml` could not be parsed, or `key` holds a rejected `value`. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  file: Schema.String,
  key: Schema.String,
  value: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.key === ""
      ? `${this.file}: ${this.reason}`
      : `${this.file}: ${this.key} = ${this.value}: ${this.reason}`
  }
}

/** A `--path` that is absolute outside the root, or climbs above it. */
export class PathOutsideRoot extends Schema.TaggedError<PathOutsideRoot>()("PathOutsideRoot", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `path ${JSON.stringify(this.path)} ${this.reason}`
  }
}

/** The task has never been used (`trail next --task T` creates it). */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  task: Schema.String
}) {
  override get message() {
    return `unknown task ${JSON.stringify(this.task)}; \`trail next --task ${this.task}\` starts it`
  }
}

/** The task exists but has no sweep yet. */
export class NoSweep extends Schema.TaggedError<NoSweep>()("NoSweep", {
  task: Schema.String
}) {
  override get message() {
    return `task ${JSON.stringify(this.task)} has no sweep yet; \`trail next\` opens sweep 1`
  }
}

/** `path` is not a work item of the task's current sweep. */
export class NotAWorkItem extends Schema.TaggedError<NotAWorkItem>()("NotAWorkItem", {
  task: Schema.String,
  sweep: Schema.Number,
  path: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.path)} is not a work item of sweep ${this.sweep} of task ${JSON.stringify(this.task)}`
  }
}

/** A sweep cannot open because no folders are registered. */
export class NoFolders extends Schema.TaggedError<NoFolders>()("NoFolders", {
  task: Schema.String
}) {
  override get message() {
    return "no folders are registered; run `trail init` in the root"
  }
}

/** A new sweep was requested while one is still active. */
export class SweepActive extends Schema.TaggedError<SweepActive>()("SweepActive", {
  task: Schema.String,
  sweep: Schema.Number
}) {
  override get message() {
    return `sweep ${this.sweep} of task ${JSON.stringify(this.task)} is still active; finish it or \`trail reset\``
  }
}

/** The current sweep is complete, so its items can no longer change (except idempotent repeats). */
export class SweepComplete extends Schema.TaggedError<SweepComplete>()("SweepComplete", {
  task: Schema.String,
  sweep: Schema.Number
}) {
  override get message() {
    return `sweep ${this.sweep} of task ${JSON.stringify(this.task)} is complete; \`trail sweep new\` opens the next`
  }
}

/** `release` on an item that is not leased, or leased by another agent. */
export class LeaseNotHeld extends Schema.TaggedError<LeaseNotHeld>()("LeaseNotHeld", {
  task: Schema.String,
  path: Schema.String,
  status: Schema.String,
  holder: Schema.NullOr(Schema.String)
}) {
  override get message() {
    return this.holder === null
      ? `${JSON.stringify(this.path)} is ${this.status}, not leased`
      : `${JSON.stringify(this.path)} is leased by ${JSON.stringify(this.holder)}`
  }
}

/**
 * `done`/`skip` by an agent that does not hold the item: it is leased to `holder` (a live lease;
 * an expired one may be completed by anyone), or it was already finished by `holder` (a late
 * report of a former holder whose lease expired and was taken over). Nothing was recorded.
 */
export class NotLeaseHolder extends Schema.TaggedError<NotLeaseHolder>()("NotLeaseHolder", {
  task: Schema.String,
  path: Schema.String,
  agent: Schema.String,
  status: Schema.String,
  holder: Schema.String
}) {
  override get message() {
    return this.status === "leased"
      ? `${JSON.stringify(this.path)} is leased by ${JSON.stringify(this.holder)}, not ${JSON.stringify(this.agent)}; only the holder may complete it (nothing was recorded)`
      : `${JSON.stringify(this.path)} was already ${this.status} by ${JSON.stringify(this.holder)} in this sweep; the report of ${JSON.stringify(this.agent)} was not recorded`
  }
}

/** A state machine was asked for a transition its table does not allow. */
export class InvalidTransition extends Schema.TaggedError<InvalidTransition>()("InvalidTransition", {
  machine: Schema.String,
  from: Schema.String,
  to: Schema.String
}) {
  override get message() {
    return `${this.machine}: ${this.from} → ${this.to} is not allowed`
  }
}

/**
 * The state database failed. `reason`:
 * `missing` (no `.trail/state.db`: only `trail init` creates one), `corrupt` (not a database,
 * malformed, or emptied to 0 bytes), `readonly` (file or directory not writable),
 * `busy` (lock not obtained after retries), `io` (anything else), `replaced` (the file was
 * replaced or deleted under a running process).
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  reason: Schema.Literal("missing", "corrupt", "readonly", "busy", "io", "replaced"),
  detail: Schema.String
}) {
  override get message() {
    switch (this.reason) {
      case "missing":
        return `no state database (${this.detail}); run \`trail init\` in the root`
      case "replaced":
        return `state database was replaced or deleted while this process used it (${this.detail}); stopped rather than write to a file nobody reads`
      case "corrupt":
        return `state database is corrupt (${this.detail}); move it aside and run \`trail init\``
      case "readonly":
        return `state database is read-only (${this.detail})`
      case "busy":
        return `state database stayed locked (${this.detail})`
      case "io":
        return `state database error: ${this.detail}`
    }
  }
}

/** Walking the root failed (unreadable root, git failure for churn). */
export class ScanError extends Schema.TaggedError<ScanError>()("ScanError", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `scanning ${this.path} failed: ${this.detail}`
  }
}

/** No worker has this id. */
export class WorkerNotFound extends Schema.TaggedError<WorkerNotFound>()("WorkerNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `unknown worker ${JSON.stringify(this.id)}; \`trail workers\` lists them`
  }
}

/** The worker has finished (`state` is terminal): it cannot be told, waited on or finished again. */
export class WorkerFinished extends Schema.TaggedError<WorkerFinished>()("WorkerFinished", {
  id: Schema.String,
  state: Schema.String,
  action: Schema.String
}) {
  override get message() {
    return `worker ${this.id} is ${this.state}: cannot ${this.action}`
  }
}

/** `--as KIND` names no loaded kind. `problem`: why a file of that name did not load. */
export class UnknownKind extends Schema.TaggedError<UnknownKind>()("UnknownKind", {
  name: Schema.String,
  known: Schema.Array(Schema.String),
  problem: Schema.optional(Schema.String)
}) {
  override get message() {
    return this.problem === undefined
      ? `unknown kind ${JSON.stringify(this.name)}; known kinds: ${this.known.join(", ")}`
      : `kind ${JSON.stringify(this.name)} cannot be loaded: ${this.problem}`
  }
}

/**
 * The kind is a project kind (or a user kind named like a built-in) whose file `trail kinds
 * trust` never recorded, or recorded with another content (`changed`). `hash`: its SHA-256 now.
 * With `setting: "worker.command"` the kind itself may run, but it runs the `worker.command`
 * that `file` (a `.trail.toml`) sets, and that setting is the untrusted one.
 */
export class KindUntrusted extends Schema.TaggedError<KindUntrusted>()("KindUntrusted", {
  name: Schema.String,
  file: Schema.String,
  hash: Schema.String,
  changed: Schema.Boolean,
  overrides: Schema.Boolean,
  setting: Schema.optional(Schema.Literal("worker.command"))
}) {
  override get message() {
    const what = this.overrides ? ` (it replaces the built-in kind ${JSON.stringify(this.name)})` : ""
    const state = this.changed ? "changed since it was trusted" : "not trusted"
    if (this.setting !== undefined)
      return (
        `kind ${JSON.stringify(this.name)} runs ${this.setting} from ${this.file}, which is ${state}, so it does not run; ` +
        `read it, check it with \`trail kinds\`, then run \`trail kinds trust ${this.setting}\``
      )
    return (
      `kind ${JSON.stringify(this.name)} from ${this.file}${what} is ${state}, so its command does not run; ` +
      `read the file, check it with \`trail kinds\`, then run \`trail kinds trust ${this.name}\``
    )
  }
}

/** A spawn that a cap or a kind forbids (max_active, max_spawn_depth, can_spawn). */
export class SpawnRefused extends Schema.TaggedError<SpawnRefused>()("SpawnRefused", {
  reason: Schema.String
}) {
  override get message() {
    return `spawn refused: ${this.reason}`
  }
}

/** A worker protocol call outside a worker, or a `done` that the protocol rejects. */
export class ProtocolError extends Schema.TaggedError<ProtocolError>()("ProtocolError", {
  reason: Schema.Literal("no-worker-identity", "evidence-required"),
  detail: Schema.String
}) {
  override get message() {
    return this.detail
  }
}

/** Another `trail supervise` holds this root. */
export class SupervisorRunning extends Schema.TaggedError<SupervisorRunning>()("SupervisorRunning", {
  pid: Schema.Number,
  host: Schema.String,
  since: Schema.Number
}) {
  override get message() {
    return `another supervisor is running on this root (pid ${this.pid} on ${this.host}, since ${new Date(this.since).toISOString()}); stop it first`
  }
}

/** The worker substrate cannot do what was asked (tmux missing, no pane, not supported). */
export class SubstrateError extends Schema.TaggedError<SubstrateError>()("SubstrateError", {
  substrate: Schema.Literal("tmux", "process"),
  reason: Schema.Literal("missing", "failed", "unsupported", "gone"),
  detail: Schema.String
}) {
  override get message() {
    return this.detail
  }
}

/** A change-set operation failed: no worktree, git refused, or the patch does not apply. */
export class ChangeSetError extends Schema.TaggedError<ChangeSetError>()("ChangeSetError", {
  id: Schema.String,
  reason: Schema.Literal("none", "live", "conflict", "git"),
  detail: Schema.String
}) {
  override get message() {
    return `worker ${this.id}: ${this.detail}`
  }
}

/** An ITEM argument names no review item (nor a worker or session that has one). */
export class ItemNotFound extends Schema.TaggedError<ItemNotFound>()("ItemNotFound", {
  ref: Schema.String
}) {
  override get message() {
    return `no inbox item ${JSON.stringify(this.ref)}; \`trail inbox\` lists them (an item id, a worker id or a session id)`
  }
}

/**
 * A session's pane no longer runs the session's agent (it exited, was killed, or another program
 * took the pane): nothing was typed, and the session's item is dropped as gone.
 */
export class PaneChanged extends Schema.TaggedError<PaneChanged>()("PaneChanged", {
  session: Schema.String,
  pane: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `session ${this.session}: its pane ${this.pane} no longer runs its agent (${this.detail}); nothing was typed, and its item is gone`
  }
}

/**
 * No checkpoint has this id (or it was deleted or purged); `"last"` when none is saved. With
 * `artifact`: the checkpoint has no artifact of that number (it has `artifacts`).
 */
export class CheckpointNotFound extends Schema.TaggedError<CheckpointNotFound>()("CheckpointNotFound", {
  id: Schema.String,
  artifact: Schema.optional(Schema.Number),
  artifacts: Schema.optional(Schema.Number)
}) {
  override get message() {
    if (this.artifact !== undefined)
      return `checkpoint ${this.id} has no artifact ${this.artifact}; its artifacts are numbered 1 to ${String(this.artifacts ?? 0)}`
    return this.id === "last"
      ? "no checkpoint is saved in this root; `trail checkpoint -m NOTE` saves one"
      : `unknown checkpoint ${JSON.stringify(this.id)}; \`trail checkpoints\` lists them`
  }
}

/**
 * A checkpoint's bundle file cannot be used: `missing` (deleted from `.trail/checkpoints/`),
 * `unreadable` (permissions, I/O), `malformed` (an artifacts file that is not what trail wrote),
 * `unwritable` (saving it failed: nothing was saved). `file` is its absolute path.
 */
export class CheckpointFileError extends Schema.TaggedError<CheckpointFileError>()("CheckpointFileError", {
  id: Schema.String,
  file: Schema.String,
  problem: Schema.Literal("missing", "unreadable", "malformed", "unwritable"),
  detail: Schema.String
}) {
  override get message() {
    switch (this.problem) {
      case "missing":
        return `checkpoint ${this.id}: ${this.file} was deleted, so its artifacts are gone; \`trail checkpoint show ${this.id}\` still prints the header`
      case "unreadable":
        return `checkpoint ${this.id}: ${this.file} cannot be read (${this.detail})`
      case "malformed":
        return `checkpoint ${this.id}: ${this.file} is not an artifacts file trail wrote (${this.detail})`
      case "unwritable":
        return `checkpoint ${this.id}: ${this.file} cannot be written (${this.detail}); nothing was saved`
    }
  }
}

/**
 * `trail continue` could not arm the checkpoint: another `continue` armed `armed` (this one or
 * another) for the next session and no session has taken it yet (`reason: "armed"`), or a
 * `--once` checkpoint was already consumed (`reason: "consumed"`).
 */
export class CheckpointTaken extends Schema.TaggedError<CheckpointTaken>()("CheckpointTaken", {
  id: Schema.String,
  reason: Schema.Literal("armed", "consumed"),
  armed: Schema.NullOr(Schema.String)
}) {
  override get message() {
    return this.reason === "consumed"
      ? `checkpoint ${this.id} was taken: it is a --once checkpoint and was already consumed`
      : this.armed === this.id
        ? `checkpoint ${this.id} is taken: it is already armed for the next Claude Code session in this root`
        : `checkpoint ${this.id} cannot be armed: ${String(this.armed)} is already armed for the next Claude Code session in this root`
  }
}

export type TrailError =
  | UsageError
  | RootNotFound
  | ConfigError
  | PathOutsideRoot
  | TaskNotFound
  | NoSweep
  | NotAWorkItem
  | NoFolders
  | SweepActive
  | SweepComplete
  | LeaseNotHeld
  | NotLeaseHolder
  | InvalidTransition
  | StoreError
  | ScanError
  | WorkerNotFound
  | WorkerFinished
  | UnknownKind
  | KindUntrusted
  | SpawnRefused
  | ProtocolError
  | SupervisorRunning
  | SubstrateError
  | ChangeSetError
  | ItemNotFound
  | PaneChanged
  | CheckpointNotFound
  | CheckpointFileError
  | CheckpointTaken

const codes: { readonly [K in TrailError["_tag"]]: string } = {
  UsageError: "usage",
  RootNotFound: "root-not-found",
  ConfigError: "config-invalid",
  PathOutsideRoot: "path-outside-root",
  TaskNotFound: "task-not-found",
  NoSweep: "no-sweep",
  NotAWorkItem: "not-a-work-item",
  NoFolders: "no-folders",
  SweepActive: "sweep-active",
  SweepComplete: "sweep-complete",
  LeaseNotHeld: "lease-not-held",
  NotLeaseHolder: "not-lease-holder",
  InvalidTransition: "invalid-transition",
  StoreError: "store",
  ScanError: "scan-failed",
  WorkerNotFound: "worker-not-found",
  WorkerFinished: "worker-finished",
  UnknownKind: "unknown-kind",
  KindUntrusted: "kind-untrusted",
  SpawnRefused: "spawn-refused",
  ProtocolError: "protocol",
  SupervisorRunning: "supervisor-running",
  SubstrateError: "substrate",
  ChangeSetError: "change-set",
  ItemNotFound: "item-not-found",
  PaneChanged: "pane-changed",
  CheckpointNotFound: "checkpoint-not-found",
  CheckpointFileError: "checkpoint-file",
  CheckpointTaken: "checkpoint-taken"
}

/** True for the errors this module defines (and only those). */
export const isTrailError = (u: unknown): u is TrailError =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && Object.hasOwn(codes, u._tag)

/** The stable machine-readable code printed in `{"error":{"code"}}`. */
export const errorCode = (error: TrailError): string =>
  error._tag === "StoreError"
    ? `store-${error.reason}`
    : error._tag === "ProtocolError"
      ? error.reason
      : error._tag === "SubstrateError"
        ? `${error.substrate}-${error.reason}`
        : error._tag === "ChangeSetError"
          ? `change-set-${error.reason}`
          : error._tag === "CheckpointFileError"
            ? `checkpoint-file-${error.problem}`
            : codes[error._tag]

/** SPEC exit codes: 2 for usage errors, 1 for every other error. */
export const exitCodeOf = (error: TrailError): 1 | 2 => (error._tag === "UsageError" ? 2 : 1)
