/**
 * Claude Code hooks (SPEC §3): `trail hook claude` turns one hook payload (JSON on stdin) into
 * one event, and `trail hooks install|uninstall` edits Claude Code's `settings.json`.
 *
 * Payload fields (Claude Code's hook input): `session_id`, `transcript_path`, `cwd`,
 * `hook_event_name`, and per event `source` (SessionStart), `prompt` (UserPromptSubmit),
 * `last_assistant_message` (Stop), `tool_name` + `tool_input` (PermissionRequest), `message` +
 * `notification_type` (Notification), `reason` (SessionEnd), `trigger` (PreCompact). The session is mapped to the tmux
 * pane its hook runs in (`$TMUX_PANE`, on the server `$TMUX` names), read again on every event.
 * A session that is itself a trail worker (`$TRAIL_WORKER_ID`) has its events attached to the
 * worker. The human's prompt text is never stored.
 *
 * Settings entries have the shape Claude Code documents:
 * `{"hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "…"}]}]}}`.
 */
import * as fs from "node:fs"
import { type NewEvent, type Subject, WorkerId } from "@trail/domain"
import { Either, ParseResult, Schema } from "effect"

/** The six events `trail hooks install` always installs. */
export const HOOK_EVENTS = [
  "SessionStart",
  "UserPromptSubmit",
  "Stop",
  "PermissionRequest",
  "Notification",
  "SessionEnd"
] as const

/**
 * `PreCompact`: installed only with `checkpoint.on_precompact = true`; its hook saves a checkpoint
 * of the session before Claude Code compacts it (SPEC §4). Its payload adds `trigger` (`manual`
 * for `/compact`, `auto`) and `custom_instructions`.
 */
export const PRE_COMPACT = "PreCompact"

export type HookEventName = (typeof HOOK_EVENTS)[number] | typeof PRE_COMPACT

const text = Schema.optional(Schema.NullOr(Schema.String))

export const HookPayload = Schema.Struct({
  session_id: Schema.String.pipe(Schema.minLength(1, { message: () => "session_id must not be empty" })),
  hook_event_name: Schema.Literal(...HOOK_EVENTS, PRE_COMPACT),
  transcript_path: text,
  cwd: text,
  source: text,
  prompt: text,
  last_assistant_message: text,
  tool_name: text,
  tool_input: Schema.optional(Schema.Unknown),
  message: text,
  notification_type: text,
  reason: text,
  trigger: text
})
export type HookPayload = typeof HookPayload.Type

/** Payloads larger than this are dropped unread (a hook must never block or balloon). */
export const MAX_PAYLOAD_BYTES = 1_048_576

const MAX_MESSAGE = 4_000

/** A short, one-line form of a tool's input for a card headline: the command, path or pattern. */
export const summarizeToolInput = (input: unknown): string => {
  if (typeof input === "string") return input.slice(0, 120)
  if (!isObject(input)) return ""
  const record = input
  for (const key of ["command", "file_path", "path", "pattern", "url", "query", "description"]) {
    const value = record[key]
    if (typeof value === "string" && value !== "") return value.replace(/\s+/g, " ").slice(0, 120)
  }
  const json = JSON.stringify(record)
  return json.length > 120 ? `${json.slice(0, 119)}…` : json
}

/** The environment a hook runs in (what it reads of it). */
export interface HookEnv {
  readonly TMUX_PANE?: string | undefined
  readonly TMUX?: string | undefined
  readonly TRAIL_WORKER_ID?: string | undefined
}

const eventTypes: { readonly [K in HookEventName]: string } = {
  SessionStart: "session.started",
  UserPromptSubmit: "session.prompted",
  Stop: "session.stopped",
  PermissionRequest: "session.permission",
  Notification: "session.notified",
  SessionEnd: "session.ended",
  PreCompact: "session.compacting"
}

/** Parses a payload: Right(payload), or Left(why it was dropped). */
export const parsePayload = (raw: string): Either.Either<HookPayload, string> => {
  if (Buffer.byteLength(raw, "utf8") > MAX_PAYLOAD_BYTES)
    return Either.left(`payload larger than ${MAX_PAYLOAD_BYTES} bytes`)
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (error) {
    return Either.left(`not JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
  return Schema.decodeUnknownEither(HookPayload)(json).pipe(
    Either.mapLeft(
      (error) =>
        `not a Claude Code hook payload: ${ParseResult.TreeFormatter.formatErrorSync(error).replace(/\s+/g, " ")}`
    )
  )
}

// ---------------------------------------------------------------------------------------------
// The agent's process (Linux /proc; elsewhere none is known and replies fall back to tmux's
// `#{pane_current_command}`)

/** A process as /proc/<pid>/stat shows it (proc(5)); `start` is its start time in clock ticks after boot. */
export interface ProcStat {
  readonly pid: number
  readonly ppid: number
  readonly pgrp: number
  /** The controlling terminal's device number; 0: none. */
  readonly tty: number
  /** The foreground process group of the controlling terminal; -1: none. */
  readonly tpgid: number
  readonly start: number
}

/** The process `pid` from /proc, or null (gone, or no /proc). */
export const procStat = (pid: number): ProcStat | null => {
  let text: string
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return null
  }
  // "pid (comm) state ppid pgrp session tty_nr tpgid …": comm may hold spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
  const num = (i: number) => Number(fields[i])
  const stat = { pid, ppid: num(1), pgrp: num(2), tty: num(4), tpgid: num(5), start: num(19) }
  return Object.values(stat).every(Number.isInteger) ? stat : null
}

/** The agent a hook belongs to: its process id and start time (the pair stays unique when pids are reused). */
export interface AgentProcess {
  readonly pid: number
  readonly start: number
}

/**
 * The agent whose hook runs as process `self`: the ancestor that leads its terminal's
 * foreground process group (Claude Code run from a shell is its own job; run as a pane's
 * program it leads its own session). Null without /proc, without a terminal, or when the
 * foreground job is not an ancestor.
 */
export const agentOf = (self: number): AgentProcess | null => {
  const chain: Array<ProcStat> = []
  for (let pid = self; pid > 1 && chain.length < 32;) {
    const stat = procStat(pid)
    if (stat === null) break
    chain.push(stat)
    pid = stat.ppid
  }
  const foreground = chain.find((p) => p.tty !== 0 && p.tpgid > 0)?.tpgid
  const agent = chain.find((p) => p.pid === foreground)
  return agent === undefined ? null : { pid: agent.pid, start: agent.start }
}

/** The event a payload becomes, at `at` (ms since epoch); `agent`: the agent's process, when known. */
export const toEvent = (
  payload: HookPayload,
  env: HookEnv,
  at: number,
  agent: AgentProcess | null = null
): NewEvent => {
  const worker =
    env.TRAIL_WORKER_ID !== undefined && Schema.is(WorkerId)(env.TRAIL_WORKER_ID) ? env.TRAIL_WORKER_ID : null
  const subject: Subject =
    worker === null ? { type: "session", id: payload.session_id } : { type: "worker", id: worker }
  const pane = env.TMUX_PANE !== undefined && env.TMUX_PANE !== "" ? env.TMUX_PANE : null
  // $TMUX is "socket-path,server-pid,session-index".
  const socket = pane === null || env.TMUX === undefined || env.TMUX === "" ? null : (env.TMUX.split(",")[0] ?? null)
  const data: Record<string, unknown> = {
    pane,
    socket,
    cwd: payload.cwd ?? null,
    transcript_path: payload.transcript_path ?? null,
    agent: pane === null ? null : agent,
    ...(worker === null ? {} : { session_id: payload.session_id })
  }
  switch (payload.hook_event_name) {
    case "SessionStart":
      data.source = payload.source ?? null
      break
    case "UserPromptSubmit":
      // The prompt is the human's own words: its length is enough for the log.
      data.prompt_length = payload.prompt?.length ?? 0
      break
    case "Stop":
      data.message = (payload.last_assistant_message ?? "").slice(0, MAX_MESSAGE)
      break
    case "PermissionRequest":
      data.tool_name = payload.tool_name ?? null
      data.tool_summary = summarizeToolInput(payload.tool_input)
      break
    case "Notification":
      data.message = (payload.message ?? "").slice(0, MAX_MESSAGE)
      data.notification_type = payload.notification_type ?? null
      break
    case "SessionEnd":
      data.reason = payload.reason ?? null
      break
    case "PreCompact":
      data.trigger = payload.trigger ?? null
      break
  }
  return { at, type: eventTypes[payload.hook_event_name], subject, data }
}

// ---------------------------------------------------------------------------------------------
// settings.json

/** True for a hook command that trail installed (whatever path trail was installed at). */
export const isTrailHookCommand = (command: unknown): boolean =>
  typeof command === "string" && /(^|[\s/'"])trail(\.cjs)?['"]? hook claude$/.test(command.trim())

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

/** Why a settings file cannot be edited safely. */
export class SettingsShapeError extends Error {}

const groupsOf = (hooks: Json, event: string): Array<unknown> => {
  const groups = hooks[event]
  if (groups === undefined) return []
  if (!Array.isArray(groups)) throw new SettingsShapeError(`hooks.${event} is not a list`)
  return groups
}

/** The commands of trail's own entries in a settings object (`hooks.<event>[].hooks[].command`), each once. */
export const trailHookCommands = (settings: unknown): Array<string> => {
  if (!isObject(settings) || !isObject(settings.hooks)) return []
  const commands = new Set<string>()
  for (const groups of Object.values(settings.hooks))
    for (const group of Array.isArray(groups) ? groups : [])
      if (isObject(group) && Array.isArray(group.hooks))
        for (const hook of group.hooks)
          if (isObject(hook) && typeof hook.command === "string" && isTrailHookCommand(hook.command))
            commands.add(hook.command.trim())
  return [...commands]
}

const hasTrailEntry = (group: unknown) =>
  isObject(group) && Array.isArray(group.hooks) && group.hooks.some((h) => isObject(h) && isTrailHookCommand(h.command))

/**
 * `async`: Claude Code runs the command in the background, so nothing waits for trail (these
 * hooks only record; none decides anything): the prompt is submitted and the permission dialog
 * drawn at once. Stop and SessionEnd stay synchronous: they come when the turn is over, and
 * Claude Code does not wait for background hooks when it exits (measured with `claude -p`
 * 2.1.197: with those two in the background, nothing after SessionStart was recorded; with them
 * synchronous, every event was), so a lost SessionEnd would leave a session's card behind.
 * SessionStart is synchronous because it answers: an armed checkpoint comes back as its
 * `additionalContext` (SPEC §4), which Claude Code reads only from a hook it waited for.
 * PreCompact is synchronous so the checkpoint is saved before the compaction starts.
 */
const ASYNC: { readonly [K in HookEventName]: { readonly async?: true } } = {
  SessionStart: {},
  UserPromptSubmit: { async: true },
  Stop: {},
  PermissionRequest: { async: true },
  Notification: { async: true },
  SessionEnd: {},
  PreCompact: {}
}

/** A trail entry whose `async` is not what {@link ASYNC} says now (installed by an older trail). */
const staleEntry = (event: HookEventName) => (hook: unknown) =>
  isObject(hook) && isTrailHookCommand(hook.command) && (hook.async === true) !== (ASYNC[event].async === true)

/** The group with its stale trail entries brought up to date. */
const upgradeGroup = (event: HookEventName, group: unknown): unknown => {
  if (!isObject(group) || !Array.isArray(group.hooks)) return group
  return {
    ...group,
    hooks: group.hooks.map((hook: unknown) => {
      if (!staleEntry(event)(hook) || !isObject(hook)) return hook
      const { async: _, ...rest } = hook
      return { ...rest, ...ASYNC[event] }
    })
  }
}

/**
 * Adds trail's entry for each of the six events to `settings` (a parsed settings.json; other keys
 * and other hooks are kept as they are), and for `PreCompact` with `options.preCompact`.
 * Idempotent: an event that already has a trail entry is left alone, except that an entry whose
 * `async` an older trail set differently (SessionStart was async before it answered) is brought
 * up to date. Returns the new settings, the events it added and those it upgraded. Throws
 * SettingsShapeError when `hooks` is not shaped as Claude Code expects.
 */
export const installHooks = (
  settings: unknown,
  command: string,
  options: { readonly preCompact?: boolean } = {}
): { settings: Json; added: Array<HookEventName>; upgraded: Array<HookEventName> } => {
  if (!isObject(settings)) throw new SettingsShapeError("the JSON root is not an object")
  const root: Json = { ...settings }
  if (root.hooks !== undefined && !isObject(root.hooks)) throw new SettingsShapeError("hooks is not an object")
  const hooks: Json = isObject(root.hooks) ? { ...root.hooks } : {}
  const added: Array<HookEventName> = []
  const upgraded: Array<HookEventName> = []
  const events: ReadonlyArray<HookEventName> = options.preCompact === true ? [...HOOK_EVENTS, PRE_COMPACT] : HOOK_EVENTS
  for (const event of events) {
    const groups = groupsOf(hooks, event)
    if (groups.some(hasTrailEntry)) {
      const stale = groups.some((g) => isObject(g) && Array.isArray(g.hooks) && g.hooks.some(staleEntry(event)))
      if (stale) {
        hooks[event] = groups.map((group) => upgradeGroup(event, group))
        upgraded.push(event)
      }
      continue
    }
    hooks[event] = [...groups, { matcher: "", hooks: [{ type: "command", command, ...ASYNC[event] }] }]
    added.push(event)
  }
  root.hooks = hooks
  return { settings: root, added, upgraded }
}

/** Removes exactly the entries trail added (and groups or events left empty by that). */
export const uninstallHooks = (settings: unknown): { settings: Json; removed: Array<string> } => {
  if (!isObject(settings)) throw new SettingsShapeError("the JSON root is not an object")
  if (settings.hooks === undefined) return { settings, removed: [] }
  if (!isObject(settings.hooks)) throw new SettingsShapeError("hooks is not an object")
  const hooks: Json = { ...settings.hooks }
  const removed: Array<string> = []
  for (const event of Object.keys(hooks)) {
    const groups = groupsOf(hooks, event)
    if (!groups.some(hasTrailEntry)) continue
    const kept = groups.flatMap((group) => {
      if (!hasTrailEntry(group) || !isObject(group) || !Array.isArray(group.hooks)) return [group]
      const rest = group.hooks.filter((h: unknown) => !(isObject(h) && isTrailHookCommand(h.command)))
      return rest.length === 0 ? [] : [{ ...group, hooks: rest }]
    })
    removed.push(event)
    if (kept.length === 0) delete hooks[event]
    else hooks[event] = kept
  }
  const root: Json = { ...settings, hooks }
  if (Object.keys(hooks).length === 0) delete root.hooks
  return { settings: root, removed }
}

/** Which of the six events (and `PreCompact`, with `withPreCompact`) have a trail entry in `settings`. */
export const installedEvents = (settings: unknown, withPreCompact = false): Array<HookEventName> => {
  if (!isObject(settings) || !isObject(settings.hooks)) return []
  const hooks = settings.hooks
  const events: ReadonlyArray<HookEventName> = withPreCompact ? [...HOOK_EVENTS, PRE_COMPACT] : HOOK_EVENTS
  return events.filter((event) => {
    const groups: unknown = hooks[event]
    return Array.isArray(groups) && groups.some(hasTrailEntry)
  })
}

/**
 * Number literals of a JSON text that `JSON.parse` then `JSON.stringify` would not give back
 * byte for byte (`12345678901234567890`, `1.0`, `1e3`): a settings file holding one is not
 * rewritten, so that no value changes behind the user's back.
 */
export const inexactNumbers = (text: string): Array<string> => {
  const found: Array<string> = []
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
  for (let i = 0; i < text.length;) {
    const c = text.charAt(i)
    if (c === '"') {
      // Skip the string, escapes included.
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++
      i++
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      number.lastIndex = i
      const match = number.exec(text)
      if (match === null) return found
      if (JSON.stringify(JSON.parse(match[0])) !== match[0]) found.push(match[0])
      i += match[0].length
    } else i++
  }
  return found
}

/**
 * `settings` as JSON text in the layout of `original` (its indent, its final newline), so that
 * adding then removing trail's entries gives back the same bytes. Two spaces for a new file.
 */
export const formatSettings = (settings: unknown, original: string | null): string => {
  const indent =
    original === null ? "  " : original.trim().includes("\n") ? (/\n([ \t]+)\S/.exec(original)?.[1] ?? "  ") : ""
  const newline = original === null || original.endsWith("\n") ? "\n" : ""
  return `${JSON.stringify(settings, null, indent)}${newline}`
}
