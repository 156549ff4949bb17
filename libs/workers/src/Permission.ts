/**
 * Answering Claude Code's permission dialog (SPEC §3): the one table of its keys, and the one
 * way free text reaches an agent that waits on the dialog — Escape first (the tool is rejected),
 * a pause, then the text and Enter — so that text never approves a tool. Used for sessions' panes
 * (Inbox) and workers' windows (Workers.tell) alike.
 */
import { Duration, Effect } from "effect"

/** How a person can answer a permission dialog (`trail inbox reply --action`). */
export const PERMISSION_ACTIONS = ["allow", "allow-always", "deny"] as const
export type PermissionAction = (typeof PERMISSION_ACTIONS)[number]

/**
 * The keys that answer the dialog, as the real CLI (2.1.197) draws it: `1. Yes`,
 * `2. Yes, and always allow …` / `Yes, allow all edits during this session`, `3. No`, and
 * "Esc to cancel" (the tool is rejected and Claude waits for the user). A test pins it against
 * the real CLI.
 */
export const PERMISSION_KEYS = {
  allow: ["1"],
  "allow-always": ["2"],
  deny: ["Escape"]
} as const satisfies Record<PermissionAction, ReadonlyArray<string>>

/**
 * After Escape, before the text: a terminal program reads Escape followed at once by a letter
 * as one Alt-key chord, so the dialog must see the Escape alone.
 */
export const ESCAPE_SETTLE = Duration.millis(400)

/**
 * Delivers text to an agent waiting on a permission dialog: `press` the deny key, wait
 * {@link ESCAPE_SETTLE}, then `type` (the text and Enter).
 */
export const denyThenType = <E, R>(
  press: (keys: ReadonlyArray<string>) => Effect.Effect<void, E, R>,
  type: Effect.Effect<void, E, R>
): Effect.Effect<void, E, R> =>
  press(PERMISSION_KEYS.deny).pipe(Effect.zipRight(Effect.sleep(ESCAPE_SETTLE)), Effect.zipRight(type))
