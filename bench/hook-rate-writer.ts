/**
 * One writer of the hook-rate bench (bench/hook-rate.ts), bundled and started by it:
 * `node writer.cjs ROOT WRITER RATE SECS SESSIONS`. For SECS seconds it records RATE Claude Code
 * hook payloads a second through `recordHook` (what `trail hook claude` does once it has read
 * its stdin: find the root, open the store, append the event, close), taking turns over SESSIONS
 * sessions of its own, each going UserPromptSubmit → PermissionRequest → Stop → … . Prints one
 * line per payload: `<key> <event> <commit ms since epoch> <append ms> <outcome>` (the key is the
 * payload's `transcript_path`, by which the bench finds the event's id), then `cpu <µs>`: the
 * CPU time its appends took (user + system, `process.cpuUsage` from the first to the last).
 */
import { recordHook } from "../apps/cli/src/hook.js"

const [root = "", writer = "0", rate = "20", secs = "10", sessionCount = "20"] = process.argv.slice(2)
const EVENTS = ["UserPromptSubmit", "PermissionRequest", "Stop"] as const
const sessions = Number(sessionCount)
const total = Number(rate) * Number(secs)
const spacing = 1000 / Number(rate)
const start = performance.now()
const lines: Array<string> = []

const payload = (seq: number) => {
  const session = seq % sessions
  const event = EVENTS[Math.floor(seq / sessions) % EVENTS.length] ?? "Stop"
  const key = `/bench/${writer}/${seq}`
  const fields: Record<string, unknown> = {
    session_id: `bench-${writer}-${session}`,
    hook_event_name: event,
    cwd: root,
    transcript_path: key
  }
  if (event === "UserPromptSubmit") fields.prompt = "go on"
  if (event === "PermissionRequest")
    Object.assign(fields, { tool_name: "Bash", tool_input: { command: `make ${seq}` } })
  if (event === "Stop") fields.last_assistant_message = `Turn ${seq} of session ${session} finished.`
  return { key, event, raw: JSON.stringify(fields) }
}

const main = async () => {
  let cpu = 0
  for (let seq = 0; seq < total; seq++) {
    // On the writer's own schedule: a late append is not made up for by a burst.
    const due = start + seq * spacing
    const wait = due - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const { key, event, raw } = payload(seq)
    const before = performance.now()
    const used = process.cpuUsage()
    const result = recordHook(raw, { env: {}, cwd: root, at: Date.now() })
    const committed = Date.now()
    const spent = process.cpuUsage(used)
    cpu += spent.user + spent.system
    lines.push(`${key} ${event} ${committed} ${(performance.now() - before).toFixed(3)} ${result.outcome}`)
  }
  process.stdout.write(`${lines.join("\n")}\ncpu ${cpu}\n`)
}

void main()
