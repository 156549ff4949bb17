/**
 * State machines as data. Each machine is a table from a state to the states it may move to;
 * every writer asks the table (or builds its SQL guards from it) instead of hard-coding rules.
 */
import { Effect } from "effect"
import { InvalidTransition } from "./errors.js"
import type { WorkItemStatus } from "./model.js"

export interface StateMachine<S extends string> {
  readonly name: string
  readonly transitions: { readonly [K in S]: ReadonlyArray<S> }
}

/** Work item: `pending → leased → done | skipped`, `leased → pending`; a pending item may be finished directly. */
export const WorkItemMachine: StateMachine<WorkItemStatus> = {
  name: "work item",
  transitions: {
    pending: ["leased", "done", "skipped"],
    leased: ["pending", "done", "skipped"],
    done: [],
    skipped: []
  }
}

export const canTransition = <S extends string>(machine: StateMachine<S>, from: S, to: S): boolean =>
  machine.transitions[from].includes(to)

/** Fails with {@link InvalidTransition} unless `from → to` is in the table. */
export const transition = <S extends string>(
  machine: StateMachine<S>,
  from: S,
  to: S
): Effect.Effect<S, InvalidTransition> =>
  canTransition(machine, from, to)
    ? Effect.succeed(to)
    : Effect.fail(new InvalidTransition({ machine: machine.name, from, to }))

// The table is total over S (its type maps every state), so its keys are exactly the states.
const statesOf = <S extends string>(machine: StateMachine<S>): ReadonlyArray<S> =>
  Object.keys(machine.transitions) as Array<S>

/** The states from which `to` may be entered (used to build SQL `WHERE status IN (…)` guards). */
export const sourcesOf = <S extends string>(machine: StateMachine<S>, to: S): ReadonlyArray<S> =>
  statesOf(machine).filter((from) => machine.transitions[from].includes(to))

/** States with no way out. */
export const terminalStates = <S extends string>(machine: StateMachine<S>): ReadonlyArray<S> =>
  statesOf(machine).filter((s) => machine.transitions[s].length === 0)
