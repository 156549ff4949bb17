/**
 * The transcript reader and the session extractor on real transcripts (fixtures/*.jsonl: written
 * by Claude Code 2.1.197 driven by `claude -p … --resume` against the tests' Messages API stub,
 * paths scrubbed to /repo and /home/user) and on damaged copies of them.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  defaultTranscriptCaps,
  SessionExtractor,
  emptyProblems,
  extractSession,
  LineSplitter,
  ofKind,
  parseLine,
  readSession,
  type TranscriptEntry
} from "../src/index.js"

const FIXTURE = path.join(import.meta.dirname, "fixtures", "session.jsonl")
const fixture = fs.readFileSync(FIXTURE, "utf8")

const scratch = (name: string, text: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trail-transcript-"))
  const file = path.join(dir, name)
  fs.writeFileSync(file, text)
  return file
}

const read = (file: string, caps = defaultTranscriptCaps) =>
  readSession(file, "s1", caps).pipe(Effect.provide(NodeContext.layer))

describe("readSession on a real Claude Code transcript", () => {
  it.effect("finds the Write, the failing and the passing Bash call, the tool error and each turn's answer", () =>
    Effect.gen(function* () {
      const { drafts, problems } = yield* read(FIXTURE)
      assert.deepStrictEqual(problems, [])
      const [edit, ...moreEdits] = ofKind(drafts, "edit")
      assert.deepStrictEqual(moreEdits, [])
      assert.include(edit, { file: "src/b.ts", tool: "Write", added: 3, removed: 0 })
      assert.deepStrictEqual(edit?.source, { type: "session", id: "s1" })

      const commands = ofKind(drafts, "command")
      assert.strictEqual(commands.length, 2)
      const [failing, passing] = commands
      assert.include(failing, { command: "ls nope-missing; echo done; exit 3", exit_code: 3, failed: true, lines: 2 })
      assert.deepStrictEqual(failing?.head, ["ls: cannot access 'nope-missing': No such file or directory", "done"])
      assert.include(passing, { command: "seq 1 40; echo warn >&2", exit_code: 0, failed: false, lines: 41 })
      assert.deepStrictEqual(passing?.head, ["1", "2", "3", "4", "5"])
      assert.deepStrictEqual(passing?.tail, ["37", "38", "39", "40", "warn"])

      const errors = ofKind(drafts, "error")
      assert.deepStrictEqual(
        errors.map((e) => [e.tool, e.message]),
        [["Write", "File has not been read yet. Read it first before writing to it."]]
      )

      const answers = ofKind(drafts, "answer").map((a) => a.text)
      assert.include(answers, "You said: what now?")
      assert.strictEqual(answers.at(-1), "You said: after compaction")
      // Claude Code's own "No response requested." (model <synthetic>) is no answer.
      assert.notInclude(answers, "No response requested.")
      assert.isTrue(drafts.every((d) => d.at !== null && d.at > Date.parse("2026-01-01")))
    })
  )

  it.effect("a session that was refused: the denied Write is an error, the blocked Bash call a failed command", () =>
    Effect.gen(function* () {
      // fixtures/denied.jsonl: `claude -p` with no permissions granted.
      const { drafts, problems } = yield* read(path.join(import.meta.dirname, "fixtures", "denied.jsonl"))
      assert.deepStrictEqual(problems, [])
      assert.deepStrictEqual(ofKind(drafts, "edit"), [])
      assert.deepStrictEqual(
        ofKind(drafts, "error").map((e) => [e.tool, e.message]),
        [["Write", "Claude requested permissions to write to /repo/src/c.ts, but you haven't granted it yet."]]
      )
      assert.deepStrictEqual(
        ofKind(drafts, "command").map((c) => [c.command, c.exit_code, c.failed, c.lines]),
        [
          ["rm -rf /repo/src", null, true, 1],
          ["echo allowed-by-default", 0, false, 1]
        ]
      )
    })
  )

  it.effect("a missing file is a problem, not a failure", () =>
    Effect.gen(function* () {
      const { drafts, problems } = yield* read("/nonexistent/dir/t.jsonl")
      assert.deepStrictEqual(drafts, [])
      assert.deepStrictEqual(problems, ["transcript /nonexistent/dir/t.jsonl: not found, nothing read from it"])
    })
  )

  it.effect("a truncated last line, malformed lines, unknown types and blocks are skipped and counted", () =>
    Effect.gen(function* () {
      const lines = fixture.trimEnd().split("\n")
      const weird = [
        "{not json",
        JSON.stringify({ type: "brand-new-type", x: 1 }),
        JSON.stringify({ type: "assistant", message: { content: [{ type: "hologram", data: 1 }] } }),
        JSON.stringify({ type: "user" }),
        "[1,2,3]"
      ]
      const last = lines.at(-2) ?? ""
      const text = [...lines.slice(0, 10), ...weird, ...lines.slice(10, -2), last.slice(0, last.length / 2)].join("\n")
      const file = scratch("t.jsonl", text)
      const { drafts, problems } = yield* read(file)
      assert.deepStrictEqual(problems, [
        `transcript ${file}: 2 malformed line(s) skipped`,
        `transcript ${file}: the last line is cut short (still being written?) and was skipped`,
        `transcript ${file}: 1 line(s) of unknown type skipped (brand-new-type ×1)`,
        `transcript ${file}: 1 content block(s) of unknown type skipped (hologram ×1)`
      ])
      // Everything before the cut is still there.
      assert.strictEqual(ofKind(drafts, "command").length, 2)
      assert.strictEqual(ofKind(drafts, "edit").length, 1)
    })
  )

  it.effect("a file over the byte cap is read from its end; an overlong line is dropped", () =>
    Effect.gen(function* () {
      const file = scratch("t.jsonl", fixture)
      const tail = fixture.length - fixture.indexOf('"content":"bash seq 1 40') + 400
      const { drafts, problems } = yield* read(file, { ...defaultTranscriptCaps, maxBytes: tail, maxLineBytes: 5000 })
      // Only the last turns were read: the seq command, not the failing one before it.
      assert.deepStrictEqual(
        ofKind(drafts, "command").map((c) => c.command),
        ["seq 1 40; echo warn >&2"]
      )
      assert.strictEqual(problems.length, 2)
      assert.match(problems[0] ?? "", /only its last [\d.]+ KiB read \([\d.]+ KiB before it skipped\)/)
      assert.match(problems[1] ?? "", /1 line\(s\) longer than 4\.9 KiB skipped/)
    })
  )

  it.effect("a byte cap that falls on a line's start keeps that line", () =>
    Effect.gen(function* () {
      const last = `${JSON.stringify({ type: "assistant", message: { content: "kept whole" } })}\n`
      const text = [
        JSON.stringify({ type: "user", message: { content: "one" } }),
        JSON.stringify({ type: "assistant", message: { content: "left behind" } }),
        JSON.stringify({ type: "user", message: { content: "two" } })
      ].join("\n")
      const file = scratch("t.jsonl", `${text}\n${last}`)
      const { drafts } = yield* read(file, { ...defaultTranscriptCaps, maxBytes: Buffer.byteLength(last) })
      assert.deepStrictEqual(
        ofKind(drafts, "answer").map((a) => a.text),
        ["kept whole"]
      )
    })
  )

  it.effect("per-kind caps keep the most recent and say how many were left out", () =>
    Effect.gen(function* () {
      const { drafts, problems } = yield* read(FIXTURE, { ...defaultTranscriptCaps, perKind: 1, outputLines: 1 })
      assert.deepStrictEqual(
        ofKind(drafts, "answer").map((a) => a.text),
        ["You said: after compaction"]
      )
      const commands = ofKind(drafts, "command")
      // Failed and successful commands are capped apart: the one failure stays.
      assert.deepStrictEqual(
        commands.map((c) => [c.failed, c.head, c.tail]),
        [
          [true, ["ls: cannot access 'nope-missing': No such file or directory", "done"], []],
          [false, ["1"], ["warn"]]
        ]
      )
      assert.include(problems, "5 older answer artifact(s) left out (at most 1 kept per kind, the most recent)")
    })
  )
})

describe("LineSplitter", () => {
  it("gives the same lines whatever the chunking, and drops only the overlong", () => {
    const bytes = new TextEncoder().encode("alpha\nbéta\n\nxxxxxxxxxxxxxxxx\ngamma")
    for (const size of [1, 2, 3, 7, bytes.length]) {
      const lines: Array<string> = []
      let overlong = 0
      const splitter = new LineSplitter(
        10,
        (line) => lines.push(line),
        () => overlong++
      )
      for (let i = 0; i < bytes.length; i += size) splitter.push(bytes.subarray(i, i + size))
      assert.strictEqual(splitter.end(), "gamma")
      assert.deepStrictEqual(lines, ["alpha", "béta"], `chunks of ${size}`)
      assert.strictEqual(overlong, 1)
    }
  })
})

describe("extractSession", () => {
  const use = (id: string, name: string, input: unknown): TranscriptEntry => ({
    _tag: "ToolUse",
    at: 1,
    id,
    name,
    input,
    cwd: "/repo"
  })
  const result = (id: string, content: string, isError = false, details: unknown = undefined): TranscriptEntry => ({
    _tag: "ToolResult",
    at: 2,
    toolUseId: id,
    content,
    isError,
    details
  })

  it("counts Edit, MultiEdit, NotebookEdit and Write lines per file, preferring the applied patch", () => {
    const { drafts } = extractSession(
      [
        use("1", "Edit", { file_path: "/repo/a.ts", old_string: "x\ny", new_string: "x\ny\nz\n" }),
        result("1", "ok"),
        use("2", "MultiEdit", {
          file_path: "/repo/a.ts",
          edits: [
            { old_string: "a", new_string: "b" },
            { old_string: "", new_string: "c\nd" }
          ]
        }),
        result("2", "ok"),
        use("3", "NotebookEdit", { notebook_path: "/elsewhere/n.ipynb", new_source: "print(1)\nprint(2)" }),
        result("3", "ok"),
        use("4", "Write", { file_path: "/repo/b.ts", content: "whole\nnew\nfile" }),
        result("4", "ok", false, {
          type: "update",
          structuredPatch: [
            { oldStart: 1, oldLines: 2, newStart: 1, newLines: 3, lines: [" whole", "-old", "+new", "+file"] }
          ]
        }),
        use("5", "Edit", { file_path: "/repo/c.ts", old_string: "q", new_string: "r" }),
        result("5", "<tool_use_error>String to replace not found in file.</tool_use_error>", true)
      ],
      "s"
    )
    assert.deepStrictEqual(
      ofKind(drafts, "edit").map((e) => [e.file, e.tool, e.added, e.removed]),
      [
        ["a.ts", "Edit,MultiEdit", 6, 3],
        ["/elsewhere/n.ipynb", "NotebookEdit", 2, 0],
        ["b.ts", "Write", 2, 1]
      ]
    )
    assert.deepStrictEqual(
      ofKind(drafts, "error").map((e) => [e.tool, e.message]),
      [["Edit", "String to replace not found in file."]]
    )
  })

  it("keeps a waiting call's facts, not its input: a command is cut to the text cap, a Write's content is not held", () => {
    const caps = { ...defaultTranscriptCaps, textChars: 10 }
    const content = "line\n".repeat(1000)
    const extractor = new SessionExtractor({ type: "session", id: "s" }, caps)
    extractor.add(use("1", "Bash", { command: "echo 0123456789abcdef" }))
    const write = { file_path: "/repo/big.txt", content }
    extractor.add(use("2", "Write", write))
    // The tool's input is the transcript's to drop: the extractor must not still read it later.
    write.content = ""
    extractor.add(result("1", "ok"))
    extractor.add(result("2", "ok"))
    const { drafts } = extractor.drafts()
    assert.deepStrictEqual(
      ofKind(drafts, "command").map((c) => c.command),
      ["echo 01234…"]
    )
    assert.deepStrictEqual(
      ofKind(drafts, "edit").map((e) => [e.file, e.added]),
      [["big.txt", 1000]]
    )
  })

  it("reads how a Bash call ended: interrupted, refused, timed out", () => {
    const { drafts } = extractSession(
      [
        use("1", "Bash", { command: "sleep 100" }),
        result("1", "", false, { stdout: "partial", stderr: "", interrupted: true }),
        use("2", "Bash", { command: "rm -rf /" }),
        result("2", "The user doesn't want to proceed with this tool use.", true),
        use("3", "Bash", { command: "make" }),
        result("3", "Exit code 2\nmake: *** No rule to make target.", true, "Error: Exit code 2\nmake: ***")
      ],
      "s"
    )
    assert.deepStrictEqual(
      ofKind(drafts, "command").map((c) => [c.command, c.exit_code, c.failed, c.head]),
      [
        ["sleep 100", null, true, ["partial"]],
        ["rm -rf /", null, true, ["The user doesn't want to proceed with this tool use."]],
        ["make", 2, true, ["make: *** No rule to make target."]]
      ]
    )
    assert.deepStrictEqual(ofKind(drafts, "error"), [])
  })

  it("the answer is the last text of a turn; a person's prompt ends the turn", () => {
    const problems = emptyProblems()
    const line = (value: unknown) => parseLine(JSON.stringify(value), problems)
    const entries = [
      ...line({ type: "user", message: { content: "first" } }),
      ...line({ type: "assistant", message: { content: [{ type: "text", text: "thinking aloud" }] } }),
      ...line({ type: "assistant", message: { content: [{ type: "thinking", thinking: "…" }] } }),
      ...line({ type: "assistant", message: { content: [{ type: "text", text: "done: A" }] } }),
      ...line({ type: "user", isMeta: true, message: { content: "<local-command-caveat>…" } }),
      ...line({ type: "user", message: { content: [{ type: "text", text: "second" }] } }),
      ...line({ type: "assistant", message: { content: "done: B" } }),
      // A subagent's prompt and text (a sidechain) neither end the turn nor answer it.
      ...line({ type: "user", isSidechain: true, message: { content: "subagent task" } }),
      ...line({ type: "assistant", isSidechain: true, message: { content: "subagent report" } })
    ]
    assert.deepStrictEqual(
      ofKind(extractSession(entries, "s").drafts, "answer").map((a) => a.text),
      ["done: A", "done: B"]
    )
    assert.strictEqual(problems.unknownBlocks.size, 0)
  })
})
