/**
 * The two hooks that do more than record (SPEC §4), in their own bundle (dist/hook-checkpoint.cjs)
 * so that `trail hook claude` loads the Effect runtime only when one of them has work:
 *
 * - {@link takeArmed}: a `SessionStart` of a new conversation (`startup`, `clear`) in a root with an
 *   armed checkpoint takes it (`Checkpoints.take`, once) and answers with Claude Code's hook
 *   output `{"hookSpecificOutput":{"hookEventName":"SessionStart","additionalContext":HEADER}}`
 *   (https://docs.claude.com/en/docs/claude-code/hooks, "SessionStart" decision control).
 * - {@link saveBeforeCompaction}: a `PreCompact` with `checkpoint.on_precompact = true` saves a
 *   checkpoint of that session, note "before compaction".
 *
 * Neither ever throws: the hook must not fail the agent. A failure is returned as text for
 * `.trail/hook-errors.log`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Path from "@effect/platform/Path"
import { Checkpoints, layer as checkpointsLayer } from "@trail/checkpoints"
import { Project } from "@trail/scheduler"
import { Database } from "@trail/store"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { takeCheckpoint } from "./Checkpointing.js"

/** What a follow-up did: the text to print on stdout (if any), and what went wrong (if anything). */
export interface FollowUp {
  readonly stdout: string | null
  readonly error: string | null
}

/** The root's project and config, and the Checkpoints service over its store. */
const layerFor = (root: string) =>
  Effect.gen(function* () {
    const project = Project.projectAt(yield* Path.Path, root)
    const config = yield* Project.loadConfig(project)
    const layer = checkpointsLayer({
      root: project.root,
      armedTtlSecs: config.checkpoint.armed_ttl_secs
    }).pipe(Layer.provideMerge(Database.layer({ filename: project.databaseFile })))
    return { project, config, layer }
  })

const run = (effect: Effect.Effect<string | null, unknown, NodeContext.NodeContext>): Promise<FollowUp> =>
  Effect.runPromiseExit(effect.pipe(Effect.provide(NodeContext.layer))).then((exit) =>
    Exit.isSuccess(exit)
      ? { stdout: exit.value, error: null }
      : { stdout: null, error: Cause.pretty(exit.cause).split("\n")[0] ?? "failed" }
  )

/** The armed checkpoint of `root` for the session `session`, as SessionStart's JSON answer (none: null). */
export const takeArmed = (root: string, session: string): Promise<FollowUp> =>
  run(
    Effect.gen(function* () {
      const { layer } = yield* layerFor(root)
      const taken = yield* Effect.flatMap(Checkpoints, (checkpoints) => checkpoints.take(session)).pipe(
        Effect.provide(layer)
      )
      if (Option.isNone(taken)) return null
      return JSON.stringify({
        hookSpecificOutput: { hookEventName: "SessionStart", additionalContext: taken.value.header }
      })
    })
  )

/** Saves a checkpoint of `session` in `root` before Claude Code compacts it, when the root opted in. */
export const saveBeforeCompaction = (root: string, session: string): Promise<FollowUp> =>
  run(
    Effect.gen(function* () {
      const { project, config, layer } = yield* layerFor(root)
      // The hook asked only with on_precompact on (hook.ts); the file may have changed since.
      if (!config.checkpoint.on_precompact) return null
      yield* takeCheckpoint(
        { root: project.root, config: config.checkpoint, session, workers: [], items: [] },
        { note: "before compaction", once: false }
      ).pipe(Effect.provide(layer))
      return null
    })
  )
