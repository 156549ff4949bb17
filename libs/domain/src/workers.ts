/**
 * The worker fleet's domain (SPEC §2): worker ids and the worker state machine.
 */
import { Schema } from "effect"
import type { StateMachine } from "./stateMachine.js"

/** A worker that trail started: `w1`, `w2`, … (also the name of its tmux window). */
export const WorkerId = Schema.String.pipe(
  Schema.pattern(/^w[1-9][0-9]*$/, { message: () => "worker id must look like w1, w2, …" }),
  Schema.brand("WorkerId")
)
export type WorkerId = typeof WorkerId.Type

/** `spawning → running ⇄ needs_input → ready | failed | lost | cancelled`. */
export const WorkerState = Schema.Literal("spawning", "running", "needs_input", "ready", "failed", "lost", "cancelled")
export type WorkerState = typeof WorkerState.Type

/**
 * The worker lifecycle. A worker can fail, be lost (lease expired, pane died) or be cancelled
 * from any live state; only a running worker waits for input or finishes ready.
 */
export const WorkerMachine: StateMachine<WorkerState> = {
  name: "worker",
  transitions: {
    spawning: ["running", "failed", "lost", "cancelled"],
    running: ["needs_input", "ready", "failed", "lost", "cancelled"],
    needs_input: ["running", "ready", "failed", "lost", "cancelled"],
    ready: [],
    failed: [],
    lost: [],
    cancelled: []
  }
}
