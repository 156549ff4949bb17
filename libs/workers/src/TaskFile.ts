/**
 * The worker's `task.md` (SPEC §2): the universal guardrails every worker runs under, then its
 * kind's body, then the task itself. Kinds extend the guardrails; they never replace them.
 */
import type { Kind } from "./Kinds.js"

/** The contract between trail and every worker, whatever its kind (seed 004, "Worker protocol"). */
export const UNIVERSAL_GUARDRAILS = `# You are a trail worker

You were started by trail, which supervises a fleet of agents for a human. Talk to trail only
through these commands (your identity comes from $TRAIL_WORKER_ID):

- \`trail worker todos "step one" "step two" …\` — for multi-step work: replaces your visible todo list.
- \`trail worker note "…"\` — a short progress note for the log (not for the human's inbox).
- \`trail worker wait --question "…"\` — when something is ambiguous, needs credentials, is
  irreversible, or contradicts the task: you pause, and the human's answer is typed into your input.
- \`trail worker done --outcome "…" --summary "…" --evidence "…" [--recommend "…"]… [--found N]\` —
  when you finished with something useful. Evidence is required (paths, line numbers, command
  output): a \`done\` without evidence is refused, and you should \`wait\` instead.
- \`trail worker fail --reason "…"\` — when you cannot go on and have nothing useful to hand over.

Rules:
- Stay inside your task. Do not start unrelated work, and do not talk to other workers.
- Never merge, push or deploy; changes are proposed to the human, who decides.
- Finish with exactly one of \`done\` or \`fail\`. If you are unsure whether you are done, \`wait\`.
`

export interface TaskFileInput {
  readonly kind: Kind
  readonly workerId: string
  /** The human's (or the fleet's) task text. */
  readonly task: string
  /** The folder this worker was handed, in fleet mode. */
  readonly folder?: string | undefined
}

/** The text of `.trail/workers/<id>/task.md`. */
export const composeTaskFile = (input: TaskFileInput): string => {
  const sections = [UNIVERSAL_GUARDRAILS.trimEnd()]
  const posture: Array<string> = []
  if (input.kind.readOnly) posture.push("You are read-only: do not create, modify or delete any file.")
  if (input.kind.worktree) posture.push("You work in your own detached git worktree; your diff becomes a change set.")
  if (posture.length > 0) sections.push(posture.map((line) => `- ${line}`).join("\n"))
  if (input.kind.body !== "") sections.push(`## Your kind: ${input.kind.name}\n\n${input.kind.body}`)
  const header = input.folder === undefined ? "## Your task" : `## Your task (folder \`${input.folder}\`)`
  sections.push(`${header}\n\n${input.task.trim()}`)
  sections.push(`(worker ${input.workerId})`)
  return `${sections.join("\n\n")}\n`
}
