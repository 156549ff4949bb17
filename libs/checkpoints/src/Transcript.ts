/**
 * Claude Code's session transcript (the JSONL file at the hooks' `transcript_path`), read as a
 * stream of {@link TranscriptEntry}s for the session extractor (SPEC §4).
 *
 * The format, as Claude Code 2.1 writes it (read from real transcripts; test/fixtures): one JSON
 * object per line with a `type`. `user` and `assistant` lines carry `message.content`, a string
 * or blocks: `text`, `tool_use` (`id`, `name`, `input`), `tool_result` (`tool_use_id`,
 * `content`, `is_error`); a user line holding a tool result also carries `toolUseResult`, the
 * tool's own details (for Bash `stdout`, `stderr`, `interrupted`; for Write/Edit
 * `structuredPatch`; a string `"Error: …"` when the tool failed). `isMeta` marks lines Claude
 * Code wrote itself, `isCompactSummary` the summary that opens a compacted conversation,
 * `message.model: "<synthetic>"` answers no model gave. Other types (`summary`, `system`,
 * `attachment`, `queue-operation`, `last-prompt`, `mode`, `file-history-snapshot`, …) say
 * nothing the artifacts need.
 *
 * Reading never fails: a missing file, a truncated last line, malformed lines, unknown line
 * types and blocks, overlong lines and a file bigger than the byte cap are skipped and counted
 * ({@link TranscriptProblems}); what could be read is kept.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Either, Schema, Stream } from "effect"
import { DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_TRANSCRIPT_BYTES } from "@trail/domain"

/** What a transcript read keeps at most. Counts, except where bytes are said. */
export interface TranscriptCaps {
  /** Bytes read at most (default 256 MiB); a bigger file is read from its last `maxBytes`. */
  readonly maxBytes: number
  /** Bytes of one line at most (default 8 MiB); a longer line is skipped. */
  readonly maxLineBytes: number
  /**
   * Artifacts kept per kind, the most recent (default 50). Failed and successful commands are
   * capped apart, so that many successes never push a failure out.
   */
  readonly perKind: number
  /** Output lines kept at each end of a command's output (default 5). */
  readonly outputLines: number
  /** Characters kept of an answer or an error message (default 2000). */
  readonly textChars: number
}

/** The caps `[checkpoint]` in .trail.toml defaults to (one source: the domain's config). */
export const defaultTranscriptCaps: TranscriptCaps = {
  maxBytes: DEFAULT_MAX_TRANSCRIPT_BYTES,
  maxLineBytes: DEFAULT_MAX_LINE_BYTES,
  perKind: 50,
  outputLines: 5,
  textChars: 2000
}

/** One fact of a transcript line, in file order. `at`: ms since the epoch, null when unknown. */
export type TranscriptEntry =
  /** A person's prompt (or slash command): it starts a turn. */
  | { readonly _tag: "Prompt"; readonly at: number | null }
  /** The assistant's text. */
  | { readonly _tag: "Text"; readonly at: number | null; readonly text: string }
  | {
      readonly _tag: "ToolUse"
      readonly at: number | null
      readonly id: string
      readonly name: string
      readonly input: unknown
      /** The session's working directory at that line, to print paths relative to it. */
      readonly cwd: string | null
    }
  | {
      readonly _tag: "ToolResult"
      readonly at: number | null
      readonly toolUseId: string
      /** The result's text (blocks joined). */
      readonly content: string
      readonly isError: boolean
      /** The line's `toolUseResult`, if any. */
      readonly details: unknown
    }

/** What a read skipped, counted. */
export interface TranscriptProblems {
  missing: boolean
  /** Bytes of the file left unread at its start (the byte cap). */
  skippedBytes: number
  malformed: number
  overlong: number
  truncatedLast: boolean
  unknownTypes: Map<string, number>
  unknownBlocks: Map<string, number>
  /** Why the read stopped early, when it did. */
  readError: string | null
}

export const emptyProblems = (): TranscriptProblems => ({
  missing: false,
  skippedBytes: 0,
  malformed: 0,
  overlong: 0,
  truncatedLast: false,
  unknownTypes: new Map(),
  unknownBlocks: new Map(),
  readError: null
})

const mib = (bytes: number) =>
  bytes < 1024 * 1024
    ? `${Math.round((bytes / 1024) * 10) / 10} KiB`
    : `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MiB`

const listed = (counts: ReadonlyMap<string, number>) =>
  [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([name, n]) => `${name} ×${n}`)
    .join(", ")

/** The problems in words, for `Bundle.problems` (empty when there were none). */
export const describeProblems = (path: string, problems: TranscriptProblems, caps: TranscriptCaps) => {
  const out: Array<string> = []
  const at = `transcript ${path}`
  if (problems.missing) out.push(`${at}: not found, nothing read from it`)
  if (problems.skippedBytes > 0)
    out.push(`${at}: only its last ${mib(caps.maxBytes)} read (${mib(problems.skippedBytes)} before it skipped)`)
  if (problems.readError !== null) out.push(`${at}: reading stopped early: ${problems.readError}`)
  if (problems.malformed > 0) out.push(`${at}: ${problems.malformed} malformed line(s) skipped`)
  if (problems.overlong > 0)
    out.push(`${at}: ${problems.overlong} line(s) longer than ${mib(caps.maxLineBytes)} skipped`)
  if (problems.truncatedLast) out.push(`${at}: the last line is cut short (still being written?) and was skipped`)
  const types = [...problems.unknownTypes.values()].reduce((a, b) => a + b, 0)
  if (types > 0) out.push(`${at}: ${types} line(s) of unknown type skipped (${listed(problems.unknownTypes)})`)
  const blocks = [...problems.unknownBlocks.values()].reduce((a, b) => a + b, 0)
  if (blocks > 0)
    out.push(`${at}: ${blocks} content block(s) of unknown type skipped (${listed(problems.unknownBlocks)})`)
  return out
}

// --- one line ------------------------------------------------------------------------------

const Line = Schema.Struct({
  type: Schema.String,
  timestamp: Schema.optional(Schema.String),
  cwd: Schema.optional(Schema.String),
  isMeta: Schema.optional(Schema.Boolean),
  isSidechain: Schema.optional(Schema.Boolean),
  isCompactSummary: Schema.optional(Schema.Boolean),
  message: Schema.optional(
    Schema.Struct({
      model: Schema.optional(Schema.String),
      content: Schema.Union(Schema.String, Schema.Array(Schema.Unknown))
    })
  ),
  toolUseResult: Schema.optional(Schema.Unknown)
})
const decodeLine = Schema.decodeUnknownEither(Line)

const Block = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("tool_use"), id: Schema.String, name: Schema.String, input: Schema.Unknown }),
  Schema.Struct({
    type: Schema.Literal("tool_result"),
    tool_use_id: Schema.String,
    content: Schema.optional(Schema.Unknown),
    is_error: Schema.optional(Schema.Boolean)
  })
)
const decodeBlock = Schema.decodeUnknownEither(Block)
const BlockType = Schema.Struct({ type: Schema.String })
const decodeBlockType = Schema.decodeUnknownEither(BlockType)

/** Line types that carry nothing for the artifacts (not problems). */
const quietTypes = new Set([
  "summary",
  "system",
  "attachment",
  "queue-operation",
  "last-prompt",
  "mode",
  "file-history-snapshot",
  "progress",
  "custom-title",
  "ai-title",
  "agent-name",
  "permission-mode",
  "pr-link",
  "tag"
])
/** Blocks that carry nothing for the artifacts (not problems). */
const quietBlocks = new Set([
  "thinking",
  "redacted_thinking",
  "image",
  "document",
  "server_tool_use",
  "web_search_tool_result",
  "web_fetch_tool_result"
])

const talk = /"type":"(?:user|assistant)"/
const quietMark = new RegExp(`"type":"(?:${[...quietTypes].join("|")})"`)

/**
 * A line that is certainly neither `user` nor `assistant` and names a quiet type: skipped without
 * parsing it (most of a transcript's bytes are such lines; JSON.parse is most of the read's cost).
 * Claude Code writes compact JSON, so the markers are exact. A line not ending in `}` is parsed
 * anyway, so that a broken one is still counted.
 */
const quiet = (text: string) => !talk.test(text) && text.trimEnd().endsWith("}") && quietMark.test(text)

const bump = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)

/** The text of a tool result's `content` (a string, or blocks of which the text ones count). */
export const toolResultText = (content: unknown): string => {
  if (typeof content === "string") return content
  if (Array.isArray(content))
    return content
      .map((block) => {
        const decoded = decodeBlock(block)
        return Either.isRight(decoded) && decoded.right.type === "text" ? decoded.right.text : ""
      })
      .filter((text) => text !== "")
      .join("\n")
  return ""
}

const timeOf = (timestamp: string | undefined) => {
  if (timestamp === undefined) return null
  const ms = Date.parse(timestamp)
  return Number.isNaN(ms) ? null : ms
}

/**
 * The entries of one transcript line; what it cannot use is counted in `problems`. Pure apart
 * from `problems`.
 */
export const parseLine = (text: string, problems: TranscriptProblems): ReadonlyArray<TranscriptEntry> => {
  if (quiet(text)) return []
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    problems.malformed++
    return []
  }
  const decoded = decodeLine(json)
  if (Either.isLeft(decoded)) {
    problems.malformed++
    return []
  }
  const line = decoded.right
  if (line.type !== "user" && line.type !== "assistant") {
    if (!quietTypes.has(line.type)) bump(problems.unknownTypes, line.type)
    return []
  }
  if (line.message === undefined) return []
  const at = timeOf(line.timestamp)
  const content = line.message.content
  if (line.type === "user") {
    const prompt = line.isMeta !== true && line.isCompactSummary !== true && line.isSidechain !== true
    if (typeof content === "string") return prompt ? [{ _tag: "Prompt", at }] : []
    const entries: Array<TranscriptEntry> = []
    let said = false
    for (const b of blocksOf(content, problems)) {
      if (b.type === "text") said = true
      else if (b.type === "tool_result")
        entries.push({
          _tag: "ToolResult",
          at,
          toolUseId: b.tool_use_id,
          content: toolResultText(b.content),
          isError: b.is_error === true,
          details: line.toolUseResult
        })
    }
    // A rejected tool's result and the person's next words can share one message.
    if (said && prompt) entries.push({ _tag: "Prompt", at })
    return entries
  }
  // A subagent's text (a sidechain) is not the session's answer; its tool calls still count.
  const speaks = line.message.model !== "<synthetic>" && line.isSidechain !== true
  if (typeof content === "string") return speaks ? [{ _tag: "Text", at, text: content }] : []
  const entries: Array<TranscriptEntry> = []
  for (const b of blocksOf(content, problems)) {
    if (b.type === "text") {
      if (speaks) entries.push({ _tag: "Text", at, text: b.text })
    } else if (b.type === "tool_use")
      entries.push({ _tag: "ToolUse", at, id: b.id, name: b.name, input: b.input, cwd: line.cwd ?? null })
  }
  return entries
}

/** The blocks of a message's content that decode; the others are counted in `problems`. */
const blocksOf = (content: ReadonlyArray<unknown>, problems: TranscriptProblems) => {
  const blocks: Array<typeof Block.Type> = []
  for (const raw of content) {
    const block = decodeBlock(raw)
    if (Either.isRight(block)) blocks.push(block.right)
    else unknownBlock(raw, problems)
  }
  return blocks
}

const unknownBlock = (raw: unknown, problems: TranscriptProblems) => {
  const typed = decodeBlockType(raw)
  const type = Either.isRight(typed) ? typed.right.type : "(no type)"
  if (!quietBlocks.has(type)) bump(problems.unknownBlocks, type)
}

// --- lines of bytes --------------------------------------------------------------------------

const NEWLINE = 10

/**
 * Splits byte chunks into lines without holding more than one line (up to `maxLineBytes`): a
 * longer line is dropped as its bytes arrive. `skipFirst`: the read starts mid-file, so the
 * first (partial) line is not a line.
 */
export class LineSplitter {
  private pieces: Array<Uint8Array> = []
  private size = 0
  private overlong = false
  private readonly decoder = new TextDecoder("utf-8")

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverlong: () => void,
    private skipFirst = false
  ) {}

  push(chunk: Uint8Array) {
    let start = 0
    for (;;) {
      const end = chunk.indexOf(NEWLINE, start)
      if (end === -1) {
        this.keep(chunk.subarray(start))
        return
      }
      this.keep(chunk.subarray(start, end))
      this.emit()
      start = end + 1
    }
  }

  /** The bytes after the last newline: `undefined` when there are none. */
  end(): string | undefined {
    if (this.size === 0 && !this.overlong) return undefined
    if (this.overlong || this.skipFirst) {
      if (this.overlong) this.onOverlong()
      this.reset()
      return undefined
    }
    const text = this.text()
    this.reset()
    return text
  }

  private keep(bytes: Uint8Array) {
    if (this.overlong || bytes.length === 0) return
    if (this.size + bytes.length > this.maxLineBytes) {
      this.overlong = true
      this.pieces = []
      this.size = 0
      return
    }
    this.pieces.push(bytes)
    this.size += bytes.length
  }

  private emit() {
    if (this.skipFirst) this.skipFirst = false
    else if (this.overlong) this.onOverlong()
    else if (this.size > 0) this.onLine(this.text())
    this.reset()
  }

  private text() {
    if (this.pieces.length === 1 && this.pieces[0] !== undefined) return this.decoder.decode(this.pieces[0])
    const whole = new Uint8Array(this.size)
    let offset = 0
    for (const piece of this.pieces) {
      whole.set(piece, offset)
      offset += piece.length
    }
    return this.decoder.decode(whole)
  }

  private reset() {
    this.pieces = []
    this.size = 0
    this.overlong = false
  }
}

/**
 * Streams the transcript at `path` (FileSystem.stream, 64 KiB chunks; never the whole file in
 * memory) and hands each entry to `onEntry` in file order. Never fails: what went wrong is in
 * the returned {@link TranscriptProblems}.
 */
export const readTranscript = (
  path: string,
  onEntry: (entry: TranscriptEntry) => void,
  caps: TranscriptCaps = defaultTranscriptCaps
): Effect.Effect<TranscriptProblems, never, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const problems = emptyProblems()
    const info = yield* Effect.either(fs.stat(path))
    if (Either.isLeft(info) || info.right.type !== "File") {
      problems.missing = true
      return problems
    }
    const size = Number(info.right.size)
    // One byte before the last `maxBytes`: when it is a newline, the first whole line is kept.
    const offset = size > caps.maxBytes ? size - caps.maxBytes - 1 : 0
    problems.skippedBytes = offset
    const entries = (text: string) => {
      for (const entry of parseLine(text, problems)) onEntry(entry)
    }
    const splitter = new LineSplitter(caps.maxLineBytes, entries, () => problems.overlong++, offset > 0)
    // One synchronous pass per 64 KiB chunk: an Effect per line would cost more than the parse.
    const read = yield* Effect.either(
      Stream.runForEach(
        fs.stream(path, { offset: BigInt(offset), bytesToRead: BigInt(size - offset), chunkSize: FileSystem.KiB(64) }),
        (chunk) => Effect.sync(() => splitter.push(chunk))
      )
    )
    if (Either.isLeft(read)) problems.readError = read.left.message
    const last = splitter.end()
    if (last !== undefined) {
      const before = problems.malformed
      entries(last)
      // A last line without its newline that does not parse is one being written, not garbage.
      if (problems.malformed > before) {
        problems.malformed = before
        problems.truncatedLast = true
      }
    }
    return problems
  })
