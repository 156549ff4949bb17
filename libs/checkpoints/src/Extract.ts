/**
 * The artifact extractors (SPEC §4): pure functions from what trail can see to typed
 * {@link ArtifactDraft}s. No clock, no I/O: the caller reads the transcript
 * ({@link readTranscript}), the events, the store and git, and passes them in.
 *
 * - a Claude Code session's transcript entries → `edit` (one per file, lines summed over its
 *   Edit/Write/MultiEdit/NotebookEdit calls), `command` (Bash), `error` (a tool result marked
 *   as error, other than Bash's), `answer` (the assistant's last text of each turn);
 * - a worker's events → `result`, `change_set`, `failure`;
 * - open review items → `review_item`; active sweeps' counters → `coverage`.
 *
 * Kept: the most recent {@link TranscriptCaps.perKind} of each kind; what a cap left out is
 * counted in `dropped` for the bundle's problems.
 */
import type { ArtifactDraft, ArtifactSource, ReviewItem, TrailEvent } from "@trail/domain"
import { WorkerResult } from "@trail/domain"
import { Either, Predicate, Schema } from "effect"
import { defaultTranscriptCaps, type TranscriptCaps, type TranscriptEntry } from "./Transcript.js"

type Draft<K extends ArtifactDraft["_tag"]> = Extract<ArtifactDraft, { readonly _tag: K }>

/** Lines of a text as an editor counts them: "" has none, a trailing newline ends the last. */
export const countLines = (text: string): number => {
  if (text === "") return 0
  let n = 0
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++
  return text.endsWith("\n") ? n : n + 1
}

/** The first `n` and the last `n` lines of `lines` (no line in both), and how many there were. */
export const headTail = (text: string, n: number) => {
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n")
  if (lines.length <= 2 * n) return { head: lines, tail: [] as Array<string>, lines: lines.length }
  return { head: lines.slice(0, n), tail: lines.slice(lines.length - n), lines: lines.length }
}

const cut = (text: string, chars: number) => (text.length <= chars ? text : `${text.slice(0, chars)}…`)

// --- tool inputs and results, decoded ----------------------------------------------------------

const EditInput = Schema.Struct({ file_path: Schema.String, old_string: Schema.String, new_string: Schema.String })
const WriteInput = Schema.Struct({ file_path: Schema.String, content: Schema.String })
const MultiEditInput = Schema.Struct({
  file_path: Schema.String,
  edits: Schema.Array(Schema.Struct({ old_string: Schema.String, new_string: Schema.String }))
})
const NotebookEditInput = Schema.Struct({
  notebook_path: Schema.String,
  new_source: Schema.optional(Schema.String),
  edit_mode: Schema.optional(Schema.String)
})
const BashInput = Schema.Struct({ command: Schema.String })
/** Write/Edit/MultiEdit results: the applied hunks, `lines` prefixed ` `, `+`, `-`. */
const PatchDetails = Schema.Struct({
  structuredPatch: Schema.Array(Schema.Struct({ lines: Schema.Array(Schema.String) }))
})
const BashDetails = Schema.Struct({
  stdout: Schema.optional(Schema.String),
  stderr: Schema.optional(Schema.String),
  interrupted: Schema.optional(Schema.Boolean)
})

const decode = <A, I>(schema: Schema.Schema<A, I>) => {
  const run = Schema.decodeUnknownEither(schema)
  return (value: unknown): A | null => {
    // Every shape here is an object: skip building a ParseError (a stack trace) for the rest.
    if (!Predicate.isRecord(value)) return null
    const decoded = run(value)
    return Either.isRight(decoded) ? decoded.right : null
  }
}
const editInput = decode(EditInput)
const writeInput = decode(WriteInput)
const multiEditInput = decode(MultiEditInput)
const notebookEditInput = decode(NotebookEditInput)
const bashInput = decode(BashInput)
const patchDetails = decode(PatchDetails)
const bashDetails = decode(BashDetails)

/** An edit's file and line counts. */
export interface EditCount {
  readonly file: string
  readonly added: number
  readonly removed: number
}

/** The lines an applied patch (a tool result's `structuredPatch`) added and removed, or null without one. */
const patchCounts = (details: unknown): { readonly added: number; readonly removed: number } | null => {
  const patch = patchDetails(details)
  if (patch === null || patch.structuredPatch.length === 0) return null
  let added = 0
  let removed = 0
  for (const hunk of patch.structuredPatch)
    for (const line of hunk.lines) {
      if (line.startsWith("+")) added++
      else if (line.startsWith("-")) removed++
    }
  return { added, removed }
}

/** The file and the lines an edit tool changed, counted from its input; null for other tools. */
const editFromInput = (tool: string, input: unknown): EditCount | null => {
  switch (tool) {
    case "Edit": {
      const edit = editInput(input)
      return edit && { file: edit.file_path, added: countLines(edit.new_string), removed: countLines(edit.old_string) }
    }
    case "Write": {
      const write = writeInput(input)
      return write && { file: write.file_path, added: countLines(write.content), removed: 0 }
    }
    case "MultiEdit": {
      const multi = multiEditInput(input)
      if (multi === null) return null
      let added = 0
      let removed = 0
      for (const edit of multi.edits) {
        added += countLines(edit.new_string)
        removed += countLines(edit.old_string)
      }
      return { file: multi.file_path, added, removed }
    }
    case "NotebookEdit": {
      const cell = notebookEditInput(input)
      if (cell === null) return null
      // A notebook edit replaces or inserts one cell's source (its old source is not in the input).
      const source = cell.edit_mode === "delete" ? 0 : countLines(cell.new_source ?? "")
      return { file: cell.notebook_path, added: source, removed: 0 }
    }
    default:
      return null
  }
}

/**
 * The file and the lines an edit tool changed: from its applied patch when the result carries one
 * (exact: a Write over an existing file, replace_all), else from its input.
 */
const withPatch = (edit: EditCount | null, details: unknown): EditCount | null => {
  if (edit === null) return null
  const patch = patchCounts(details)
  return patch === null ? edit : { file: edit.file, ...patch }
}

/** The file and the lines an edit tool changed, from its input (and its applied patch when given). */
export const editOf = (tool: string, input: unknown, details: unknown): EditCount | null =>
  withPatch(editFromInput(tool, input), details)

const EXIT = /^(?:Error: )?Exit code (-?\d+)\s*\n?/

/** A Bash call's ending, read from its result: exit status (null when not named), failed, output. */
export const commandEnding = (content: string, isError: boolean, details: unknown) => {
  const bash = bashDetails(details)
  if (!isError) {
    const output =
      bash === null
        ? content
        : [bash.stdout ?? "", bash.stderr ?? ""].filter((part) => part !== "").join("\n") || content
    const interrupted = bash?.interrupted === true
    return { exit_code: interrupted ? null : 0, failed: interrupted, output }
  }
  const exit = EXIT.exec(content)
  return {
    exit_code: exit?.[1] === undefined ? null : Number(exit[1]),
    failed: true,
    output: exit === null ? content : content.slice(exit[0].length)
  }
}

const errorMessage = (content: string) => content.replace(/^<tool_use_error>([\s\S]*)<\/tool_use_error>$/, "$1").trim()

const relative = (file: string, cwd: string | null) =>
  cwd !== null && file.startsWith(`${cwd.replace(/\/+$/, "")}/`) ? file.slice(cwd.replace(/\/+$/, "").length + 1) : file

// --- the session extractor ---------------------------------------------------------------------

/** The most recent `cap` items, and how many were pushed out. */
class Recent<A> {
  readonly items: Array<A> = []
  dropped = 0
  constructor(private readonly cap: number) {}
  push(item: A) {
    this.items.push(item)
    if (this.items.length > this.cap) {
      this.items.shift()
      this.dropped++
    }
  }
}

/**
 * A tool call waiting for its result, reduced to what its artifact needs: a Write's content or an
 * Edit's strings can be megabytes, and a call interrupted without a result waits here until
 * pushed out, so the input itself is not kept.
 */
interface PendingTool {
  readonly name: string
  readonly at: number | null
  readonly cwd: string | null
  /** A Bash call's command, cut to `textChars`. */
  readonly command: string | null
  /** An edit tool's file and counts from its input. */
  readonly edit: EditCount | null
}

/** Tool calls waiting for their result, at most (older ones are forgotten). */
const MAX_PENDING = 1000

/**
 * Folds transcript entries into drafts, one entry at a time, holding only what the caps keep
 * (so a 100 MB transcript streams through it). `drafts()` may be called at any point.
 */
export class SessionExtractor {
  private readonly pending = new Map<string, PendingTool>()
  /** Per file, in order of its last edit (a re-edited file moves to the end). */
  private readonly edits = new Map<
    string,
    { tools: Array<string>; added: number; removed: number; at: number | null }
  >()
  private editsDropped = 0
  private readonly failed: Recent<Draft<"command">>
  private readonly succeeded: Recent<Draft<"command">>
  private readonly errors: Recent<Draft<"error">>
  private readonly answers: Recent<Draft<"answer">>
  private answer: { text: string; at: number | null } | null = null

  constructor(
    private readonly source: ArtifactSource,
    private readonly caps: TranscriptCaps = defaultTranscriptCaps
  ) {
    this.failed = new Recent(caps.perKind)
    this.succeeded = new Recent(caps.perKind)
    this.errors = new Recent(caps.perKind)
    this.answers = new Recent(caps.perKind)
  }

  add(entry: TranscriptEntry): void {
    switch (entry._tag) {
      case "Prompt":
        return this.endTurn()
      case "Text":
        if (entry.text.trim() !== "") this.answer = { text: entry.text, at: entry.at }
        return
      case "ToolUse":
        this.pending.set(entry.id, {
          name: entry.name,
          at: entry.at,
          cwd: entry.cwd,
          command: entry.name === "Bash" ? (bashInput(entry.input)?.command ?? null) : null,
          edit: editFromInput(entry.name, entry.input)
        })
        if (this.pending.size > MAX_PENDING) {
          const oldest = this.pending.keys().next()
          if (oldest.done !== true) this.pending.delete(oldest.value)
        }
        return
      case "ToolResult": {
        const use = this.pending.get(entry.toolUseId)
        if (use === undefined) return
        this.pending.delete(entry.toolUseId)
        return this.result(use, entry)
      }
    }
  }

  private result(use: PendingTool, result: Extract<TranscriptEntry, { _tag: "ToolResult" }>) {
    const at = result.at ?? use.at
    if (use.name === "Bash") {
      const ending = commandEnding(result.content, result.isError, result.details)
      const output = headTail(ending.output, this.caps.outputLines)
      const draft: Draft<"command"> = {
        _tag: "command",
        source: this.source,
        at,
        command: use.command === null ? "(command not recorded)" : cut(use.command, this.caps.textChars),
        exit_code: ending.exit_code,
        failed: ending.failed,
        head: output.head.map((line) => cut(line, this.caps.textChars)),
        tail: output.tail.map((line) => cut(line, this.caps.textChars)),
        lines: output.lines
      }
      return (draft.failed ? this.failed : this.succeeded).push(draft)
    }
    if (result.isError)
      return this.errors.push({
        _tag: "error",
        source: this.source,
        at,
        tool: use.name,
        message: cut(errorMessage(result.content), this.caps.textChars)
      })
    const edit = withPatch(use.edit, result.details)
    if (edit === null) return
    const file = relative(edit.file, use.cwd)
    const seen = this.edits.get(file)
    this.edits.delete(file)
    this.edits.set(file, {
      tools:
        seen === undefined || seen.tools.includes(use.name) ? (seen?.tools ?? [use.name]) : [...seen.tools, use.name],
      added: (seen?.added ?? 0) + edit.added,
      removed: (seen?.removed ?? 0) + edit.removed,
      at
    })
    // Files are few next to lines; the bound only guards against pathological sessions.
    if (this.edits.size > this.caps.perKind * 20) {
      const oldest = this.edits.keys().next()
      if (oldest.done !== true) this.edits.delete(oldest.value)
      this.editsDropped++
    }
  }

  private endTurn() {
    if (this.answer === null) return
    this.answers.push({
      _tag: "answer",
      source: this.source,
      at: this.answer.at,
      text: cut(this.answer.text, this.caps.textChars)
    })
    this.answer = null
  }

  /** The drafts so far, oldest first within each kind, and what the caps left out per kind. */
  drafts(): { readonly drafts: ReadonlyArray<ArtifactDraft>; readonly dropped: Readonly<Record<string, number>> } {
    this.endTurn()
    const files = [...this.edits.entries()]
    const kept = files.slice(Math.max(0, files.length - this.caps.perKind))
    const edits: Array<ArtifactDraft> = kept.map(([file, edit]) => ({
      _tag: "edit",
      source: this.source,
      at: edit.at,
      file,
      tool: edit.tools.join(","),
      added: edit.added,
      removed: edit.removed
    }))
    const commands = [...this.failed.items, ...this.succeeded.items].sort((a, b) => (a.at ?? 0) - (b.at ?? 0))
    return {
      drafts: [...edits, ...commands, ...this.errors.items, ...this.answers.items],
      dropped: {
        edit: this.editsDropped + files.length - kept.length,
        command: this.failed.dropped + this.succeeded.dropped,
        error: this.errors.dropped,
        answer: this.answers.dropped
      }
    }
  }
}

/** What the caps left out, in words for `Bundle.problems`. */
export const describeDropped = (
  dropped: Readonly<Record<string, number>>,
  caps: TranscriptCaps = defaultTranscriptCaps
) =>
  Object.entries(dropped)
    .filter(([, n]) => n > 0)
    .map(
      ([kind, n]) => `${n} older ${kind} artifact(s) left out (at most ${caps.perKind} kept per kind, the most recent)`
    )

/** A session's drafts from its transcript entries (the pure whole-array form of {@link SessionExtractor}). */
export const extractSession = (
  entries: Iterable<TranscriptEntry>,
  session: string | null,
  caps: TranscriptCaps = defaultTranscriptCaps
) => {
  const extractor = new SessionExtractor({ type: "session", id: session }, caps)
  for (const entry of entries) extractor.add(entry)
  return extractor.drafts()
}

// --- workers, the inbox, the scheduler ---------------------------------------------------------

const ChangeSetData = Schema.Struct({
  files: Schema.NonNegativeInt,
  insertions: Schema.NonNegativeInt,
  deletions: Schema.NonNegativeInt,
  paths: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
})
const ReadyData = Schema.Struct({ result: WorkerResult, change_set: Schema.optional(ChangeSetData) })
const EndedData = Schema.Struct({
  reason: Schema.optional(Schema.NullOr(Schema.String)),
  last_lines: Schema.optional(Schema.Array(Schema.String))
})
const readyData = decode(ReadyData)
const endedData = decode(EndedData)

/**
 * A worker's drafts from its events (the log's `worker.*` events of that worker, any order):
 * its last ending decides — `worker.ready` gives a `result` (and a `change_set` when its data
 * has one with files), `worker.failed` / `worker.lost` a `failure` with `lastLines` (the last
 * lines it printed, as the caller read them; else those its ending event kept). A live or
 * cancelled worker gives nothing.
 */
export const workerArtifacts = (
  worker: string,
  events: ReadonlyArray<TrailEvent>,
  lastLines: ReadonlyArray<string> = []
): ReadonlyArray<ArtifactDraft> => {
  const endings = ["worker.ready", "worker.failed", "worker.lost", "worker.cancelled", "worker.running"]
  const last = [...events]
    .filter((event) => event.subject.type === "worker" && event.subject.id === worker && endings.includes(event.type))
    .sort((a, b) => a.id - b.id)
    .at(-1)
  if (last === undefined) return []
  const source: ArtifactSource = { type: "worker", id: worker }
  if (last.type === "worker.ready") {
    const data = readyData(last.data)
    if (data === null) return []
    const result: ArtifactDraft = {
      _tag: "result",
      source,
      at: last.at,
      worker,
      outcome: data.result.outcome,
      summary: data.result.summary,
      evidence: data.result.evidence,
      recommend: data.result.recommend,
      found: data.result.found === null ? null : Math.max(0, data.result.found)
    }
    const changeSet = data.change_set
    if (changeSet === undefined || changeSet.files === 0) return [result]
    return [
      result,
      {
        _tag: "change_set",
        source,
        at: last.at,
        worker,
        files: changeSet.files,
        insertions: changeSet.insertions,
        deletions: changeSet.deletions,
        diffstat: changeSet.paths
      }
    ]
  }
  if (last.type === "worker.failed" || last.type === "worker.lost") {
    const ended = endedData(last.data)
    return [
      {
        _tag: "failure",
        source,
        at: last.at,
        worker,
        reason: ended?.reason ?? (last.type === "worker.lost" ? "lost" : "failed"),
        last_lines: lastLines.length > 0 ? lastLines : (ended?.last_lines ?? [])
      }
    ]
  }
  return []
}

/** The open (not dismissed) review items, in the order given. */
export const reviewItemArtifacts = (items: ReadonlyArray<ReviewItem>): ReadonlyArray<ArtifactDraft> =>
  items
    .filter((item) => !item.dismissed)
    .map((item) => ({
      _tag: "review_item",
      source: { type: "store", id: null },
      at: item.since,
      item: item.id,
      kind: item.kind,
      headline: item.headline
    }))

/** An active sweep's counters, as the scheduler reports them. */
export interface SweepCoverage {
  readonly task: string
  readonly sweep: number
  readonly done: number
  readonly skipped: number
  readonly leased: number
  readonly pending: number
  readonly total: number
  /** When the sweep was opened (ms), if known. */
  readonly at?: number | null
}

export const coverageArtifacts = (sweeps: ReadonlyArray<SweepCoverage>): ReadonlyArray<ArtifactDraft> =>
  sweeps.map((sweep) => ({
    _tag: "coverage",
    source: { type: "store", id: null },
    at: sweep.at ?? null,
    task: sweep.task,
    sweep: sweep.sweep,
    done: sweep.done,
    skipped: sweep.skipped,
    leased: sweep.leased,
    pending: sweep.pending,
    total: sweep.total
  }))
