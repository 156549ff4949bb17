/**
 * Reading the event log from the CLI with bounded memory (`trail log`, `trail events`): their
 * shared `--since`, `--limit` and `--follow`, and the writers that put a window of the log on
 * stdout piece by piece (a JSON array is written as it is read, never built whole).
 */
import * as Options from "@effect/cli/Options"
import { EventLog, type StoreError, type Subject, type TrailEvent, UsageError } from "@trail/domain"
import type { Database } from "@trail/store"
import { Timeline } from "@trail/workers"
import { Effect, Option, Queue } from "effect"
import { writeDrained as write } from "./Output.js"
import { bold, dim, safeData, time } from "./Pretty.js"

/** An ISO-8601 date or date-time (`2026-11-01`, `2026-11-01T12:00Z`, `2026-11-01T12:00:30+02:00`). */
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/

/**
 * `text` as a time in ms: an ISO-8601 date (midnight UTC) or date-time (UTC unless it carries an
 * offset), or a UsageError naming `option`.
 */
export const parseDate = (option: string, text: string): Effect.Effect<number, UsageError> => {
  const match = ISO.exec(text)
  // A date-time without a zone is read as UTC (JavaScript would read it as local time).
  const ms = match === null ? NaN : Date.parse(match[0].length > 10 && match[1] === undefined ? `${text}Z` : text)
  return Number.isNaN(ms)
    ? Effect.fail(
        new UsageError({
          message: `${option} takes an ISO-8601 date or date-time (2026-11-01, 2026-11-01T12:00Z), not ${JSON.stringify(text)}`
        })
      )
    : Effect.succeed(ms)
}

/** `--since` as an event id (digits) or an ISO-8601 date/date-time. */
export const parseSince = (text: string): Effect.Effect<Timeline.Since, UsageError> =>
  /^\d+$/.test(text) ? Effect.succeed({ id: Number(text) }) : Effect.map(parseDate("--since", text), (at) => ({ at }))

export const sinceOption = Options.text("since").pipe(
  Options.optional,
  Options.withDescription(
    "Start after this event id (e.g. 1200), or at the first event logged at or after this ISO-8601 date/time (2026-11-01 is midnight UTC; 2026-11-01T12:00 is UTC unless it has an offset)."
  )
)

export const limitOption = Options.integer("limit").pipe(
  Options.optional,
  Options.withDescription("Only the newest N events (after --since): the end of the log, where the trouble usually is.")
)

export const followOption = Options.boolean("follow").pipe(
  Options.withDescription("Keep printing new events as they are appended (Ctrl-C ends).")
)

/** The window `--since` / `--limit` (Options values) select, for `only`'s subject when given. */
export const windowOf = (
  archiveDir: string,
  options: { readonly since: Option.Option<string>; readonly limit: Option.Option<number> },
  only?: Timeline.Only
): Effect.Effect<Timeline.Window, UsageError | StoreError, Database.Database> =>
  Effect.gen(function* () {
    if (Option.isSome(options.limit) && options.limit.value < 1)
      return yield* new UsageError({ message: "--limit must be 1 or more" })
    const since = Option.isSome(options.since) ? yield* parseSince(options.since.value) : undefined
    return yield* Timeline.window(archiveDir, { since, limit: Option.getOrUndefined(options.limit), only })
  })

/** One event as an NDJSON line. */
export const ndjson = (event: TrailEvent) => `${JSON.stringify(event)}\n`

const subjectTitle: Record<Subject["type"], string> = {
  worker: "Worker",
  session: "Session",
  supervisor: "Supervisor",
  checkpoint: "Checkpoint"
}

/** A subject's heading in the pretty timeline. */
export const subjectLine = (subject: Subject) => bold(`${subjectTitle[subject.type]} ${safeData(subject.id)}`)

/** One event under its subject in the pretty timeline (data made terminal-safe). */
export const eventLine = (e: TrailEvent) =>
  `   ${safeData(e.type).padEnd(20)} ${dim(time(e.at))}  ${safeData(JSON.stringify(e.data)).slice(0, 80)}  ${dim(`#${e.id}`)}`

/**
 * Writes the episodes of `window` to stdout as they are read: JSON, one array of
 * `{subject, events}` written piece by piece; pretty, each subject's heading, then its events.
 */
export const writeEpisodes = (
  archiveDir: string,
  window: Timeline.Window,
  pretty: boolean,
  only?: Timeline.Only
): Effect.Effect<void, StoreError, Database.Database> =>
  Effect.gen(function* () {
    let episodes = 0
    const piece = (p: Timeline.Piece) => {
      const first = p.first && episodes++ > 0
      if (pretty)
        return write(
          `${p.first ? `${first ? "\n" : ""}${subjectLine(p.subject)}\n` : ""}${p.events.map(eventLine).join("\n")}\n`
        )
      const opening = p.first ? `${first ? "]}," : ""}{"subject":${JSON.stringify(p.subject)},"events":[` : ","
      return write(`${opening}${p.events.map((e) => JSON.stringify(e)).join(",")}`)
    }
    if (!pretty) yield* write("[")
    yield* Timeline.stream(archiveDir, window, piece, only)
    if (!pretty) yield* write(episodes === 0 ? "]\n" : "]}]\n")
  })

/**
 * The pretty line of a followed event: under its subject's heading, printed again whenever the
 * subject changes.
 */
export const prettyFollower = () => {
  let last = ""
  return (e: TrailEvent) => {
    const key = `${e.subject.type}:${e.subject.id}`
    const heading = key === last ? "" : `\n${subjectLine(e.subject)}\n`
    last = key
    return `${heading}${eventLine(e)}\n`
  }
}

/**
 * Prints every event appended after `after` as it arrives, through `line`, until interrupted,
 * from `subscription` (taken before the window was read, so nothing falls between). Only those
 * of `only` when given.
 */
export const follow = (
  subscription: Queue.Dequeue<TrailEvent>,
  after: number,
  line: (event: TrailEvent) => string,
  only?: Timeline.Only
) =>
  Effect.gen(function* () {
    let last = after
    for (;;) {
      const event = yield* Queue.take(subscription)
      if (event.id <= last) continue
      last = event.id
      if (only !== undefined && (event.subject.type !== only.type || event.subject.id !== only.id)) continue
      yield* write(line(event))
    }
  })

/** A subscription to the live log when `follow`, else none (taken first: see {@link follow}). */
export const subscribeIf = (following: boolean) =>
  following
    ? Effect.map(
        Effect.flatMap(EventLog, (log) => log.subscribe),
        Option.some
      )
    : Effect.succeed(Option.none())
