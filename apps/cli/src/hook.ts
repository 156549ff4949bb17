/**
 * `trail hook claude`, the hot path of every Claude Code session: one hook payload on stdin
 * becomes one event in `.trail/state.db`. It runs on every prompt and every turn, so it skips the
 * CLI framework and the Effect runtime: bin/trail.cjs loads this module alone (dist/hook.cjs)
 * for exactly `trail hook claude`. It never fails: a payload it cannot use, or a store it cannot
 * write, is noted in `.trail/hook-errors.log` and dropped. It prints nothing, except the answer of
 * a SessionStart that takes an armed checkpoint (hookCheckpoint.ts, loaded only then).
 */
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { StoreError } from "@trail/domain"
import * as ConfigText from "@trail/scheduler/ConfigText"
import * as Events from "@trail/store/Events"
import * as UnitOfWork from "@trail/store/UnitOfWork"
import * as Hooks from "@trail/workers/Hooks"
import { Either } from "effect"

/**
 * What the hook reads of its process, once, in {@link runHook}: its environment, its working
 * directory and the wall time (ms since the epoch). This entry runs outside the Effect runtime on
 * purpose (start-up cost, see the module comment), so these are read there directly and passed
 * down as values (a documented exception, docs/architecture.md); tests pass their own.
 */
export interface HookProcess {
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
  readonly at: number
}

/**
 * The root a hook belongs to: the nearest `.trail/` above the session's cwd, else above
 * $TRAIL_ROOT, else above the hook process's own cwd (`processCwd`).
 */
export const hookRoot = (
  sessionCwd: string | null | undefined,
  env: NodeJS.ProcessEnv,
  processCwd: string
): string | null => {
  for (const start of [sessionCwd, env["TRAIL_ROOT"], processCwd]) {
    if (typeof start !== "string" || start === "") continue
    let dir = path.resolve(start)
    for (;;) {
      if (fs.existsSync(path.join(dir, ".trail"))) return dir
      const parent = path.dirname(dir)
      if (parent === dir) break
      dir = parent
    }
  }
  return null
}

/** Reads stdin up to just past the payload cap, giving up after `ms` (a hook must never block). */
export const readPayload = (ms: number): Promise<string> =>
  new Promise((resolve) => {
    if (process.stdin.isTTY === true) return resolve("")
    let data = ""
    const done = () => {
      clearTimeout(timer)
      process.stdin.pause()
      process.stdin.removeAllListeners()
      resolve(data)
    }
    const timer = setTimeout(done, ms)
    process.stdin.setEncoding("utf8")
    process.stdin.on("data", (chunk: string) => {
      data += chunk
      if (data.length > Hooks.MAX_PAYLOAD_BYTES) done()
    })
    process.stdin.on("end", done)
    process.stdin.on("error", done)
  })

const note = (root: string | null, at: number, message: string) => {
  if (root === null) return
  try {
    fs.appendFileSync(
      path.join(root, ".trail", "hook-errors.log"),
      `${new Date(at).toISOString()} ${message.replace(/\s+/g, " ").slice(0, 2_000)}\n`
    )
  } catch {
    // nowhere to write: drop it
  }
}

/**
 * What a recorded payload still asks for (SPEC §4): `take` — a SessionStart of a new conversation
 * (`startup`, `clear`) while a checkpoint is armed; `precompact` — a PreCompact in a root whose
 * `.trail.toml` has `checkpoint.on_precompact = true`.
 */
export interface FollowUp {
  readonly kind: "take" | "precompact"
  readonly root: string
  readonly session: string
}

/**
 * How long (ms) a hook that empties the write-ahead log ({@link UnitOfWork.WAL_TRUNCATE_BYTES})
 * waits for the other connections: the agent waits for its hook, and the next hook tries again.
 */
const WAL_TRUNCATE_WAIT_MS = 100

/** Whether a checkpoint is armed (the cheap check, so that most SessionStarts load nothing more). */
const ARMED = "SELECT 1 FROM checkpoints WHERE armed_at IS NOT NULL LIMIT 1"

/**
 * Records one payload read from stdin by the process `self` (its env, cwd, and the time it read
 * it). Returns what happened: `recorded` (with the follow-up it asks for, if any), `dropped`
 * (noted in hook-errors.log) or `no-root` (no trail root to tell).
 */
export const recordHook = (
  raw: string,
  self: HookProcess
): { readonly outcome: "recorded" | "dropped" | "no-root"; readonly followUp: FollowUp | null } => {
  const { env, at } = self
  const parsed = Hooks.parsePayload(raw)
  const root = hookRoot(parsed._tag === "Right" ? parsed.right.cwd : null, env, self.cwd)
  if (parsed._tag === "Left") {
    note(root, at, `dropped: ${parsed.left}`)
    return { outcome: "dropped", followUp: null }
  }
  if (root === null) return { outcome: "no-root", followUp: null }
  const file = path.join(root, ".trail", "state.db")
  const payload = parsed.right
  let handle: UnitOfWork.Handle | undefined
  try {
    // The store's own check, before any write: a file that is not a migrated trail store is refused.
    // SQLite's busy wait is the store's own (UnitOfWork.BUSY_TIMEOUT_MS), not less: 50 processes
    // appending 20 events a second each on an overloaded machine (load 40–60) saw 2 s waits run
    // out (the event dropped) and none of 5 s; a hook that waits longer loses nothing.
    handle = UnitOfWork.open(file, { checkMigrated: true })
    // The agent's process is recorded only for a session in a tmux pane (toEvent): no /proc walk otherwise.
    const inPane = env["TMUX_PANE"] !== undefined && env["TMUX_PANE"] !== ""
    Events.append(handle.connection, Hooks.toEvent(payload, env, at, inPane ? Hooks.agentOf(process.pid) : null))
    try {
      // The event is recorded: emptying a long log is the store's upkeep, and a busy one is left to the next hook.
      handle.truncateWal(UnitOfWork.WAL_TRUNCATE_BYTES, WAL_TRUNCATE_WAIT_MS)
    } catch {
      // the next hook tries again
    }
    const session = payload.session_id
    if (payload.hook_event_name === Hooks.PRE_COMPACT) {
      // The settings keep the hook after `checkpoint.on_precompact` is switched off: the config
      // decides, read before the checkpoint bundle is loaded.
      const config = ConfigText.readSync(root)
      if (Either.isLeft(config)) note(root, at, `precompact of ${session} skipped: ${config.left.message}`)
      return Either.isRight(config) && config.right.checkpoint.on_precompact
        ? { outcome: "recorded", followUp: { kind: "precompact", root, session } }
        : { outcome: "recorded", followUp: null }
    }
    const fresh = payload.source === "startup" || payload.source === "clear"
    if (payload.hook_event_name === "SessionStart" && fresh && handle.connection.pluck(ARMED) !== undefined)
      return { outcome: "recorded", followUp: { kind: "take", root, session } }
    return { outcome: "recorded", followUp: null }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    note(
      root,
      at,
      error instanceof StoreError && error.reason === "corrupt"
        ? `not recorded: ${file} holds no trail store (only \`trail init\` creates one)`
        : `not recorded: ${message}`
    )
    return { outcome: "dropped", followUp: null }
  } finally {
    handle?.close()
  }
}

type CheckpointModule = typeof import("./hookCheckpoint.js")

const isCheckpointModule = (loaded: unknown): loaded is CheckpointModule =>
  typeof loaded === "object" &&
  loaded !== null &&
  "takeArmed" in loaded &&
  typeof loaded.takeArmed === "function" &&
  "saveBeforeCompaction" in loaded &&
  typeof loaded.saveBeforeCompaction === "function"

/**
 * The follow-up's module: dist/hook-checkpoint.cjs beside the bundle this runs from (required
 * only now, so the hot path never loads it), else the source module (unbundled runs).
 */
const checkpointModule = async (): Promise<CheckpointModule> => {
  const bundled = typeof __dirname === "string" ? path.join(__dirname, "hook-checkpoint.cjs") : null
  const loaded: unknown =
    bundled !== null && fs.existsSync(bundled) ? createRequire(bundled)(bundled) : await import("./hookCheckpoint.js")
  if (!isCheckpointModule(loaded)) throw new Error("hook-checkpoint.cjs is not trail's checkpoint hook module")
  return loaded
}

/** Runs a follow-up; returns what to print on stdout (SessionStart's answer), if anything. */
export const followUp = async (follow: FollowUp, at: number): Promise<string | null> => {
  try {
    const module_ = await checkpointModule()
    const done =
      follow.kind === "take"
        ? await module_.takeArmed(follow.root, follow.session)
        : await module_.saveBeforeCompaction(follow.root, follow.session)
    if (done.error !== null) note(follow.root, at, `${follow.kind} of ${follow.session} failed: ${done.error}`)
    return done.stdout
  } catch (error) {
    note(
      follow.root,
      at,
      `${follow.kind} of ${follow.session} failed: ${error instanceof Error ? error.message : String(error)}`
    )
    return null
  }
}

/** The whole hook: read, record, answer when asked (SessionStart of an armed checkpoint), exit 0. */
export const runHook = async (): Promise<void> => {
  const raw = await readPayload(2_000)
  try {
    // Outside the Effect runtime on purpose (start-up cost): the process itself is read here, once.
    const at = Date.now() // wall-clock: no Effect Clock here
    const recorded = recordHook(raw, { env: process.env, cwd: process.cwd(), at })
    if (recorded.followUp === null) return
    const answer = await followUp(recorded.followUp, at)
    if (answer !== null) await new Promise<void>((resolve) => process.stdout.write(`${answer}\n`, () => resolve()))
  } catch {
    // never fail the agent's hook
  }
}
