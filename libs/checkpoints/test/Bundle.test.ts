import { assert, describe, it } from "@effect/vitest"
import { type ArtifactDraft, CheckpointId, ReviewItem, TrailEvent } from "@trail/domain"
import {
  artifactText,
  composeBundle,
  coverageArtifacts,
  NOTE_MARKER,
  readHeader,
  reviewItemArtifacts,
  setSection,
  workerArtifacts
} from "../src/index.js"

const id = CheckpointId.make("cp-20261122-031500-3f2a")
const session = { type: "session", id: "s1" } as const

const event = (eventId: number, type: string, worker: string, data: Record<string, unknown>) =>
  new TrailEvent({ id: eventId, at: 1000 + eventId, type, subject: { type: "worker", id: worker }, data })

const workerDrafts = [
  ...workerArtifacts("w1", [
    event(1, "worker.running", "w1", { from: "spawning" }),
    event(2, "worker.ready", "w1", {
      from: "running",
      result: {
        outcome: "found",
        summary: "the lease is renewed after it expired",
        evidence: ["src/lease.ts:42"],
        recommend: ["renew at a third of the ttl"],
        found: 1
      },
      change_set: { files: 2, insertions: 10, deletions: 3, paths: ["src/lease.ts", "test/lease.test.ts"] }
    })
  ]),
  ...workerArtifacts(
    "w2",
    [event(3, "worker.failed", "w2", { from: "running", reason: "exited 1" })],
    ["npm ERR! missing script: tset"]
  )
]

const drafts: ReadonlyArray<ArtifactDraft> = [
  {
    _tag: "git",
    source: { type: "git", id: null },
    at: null,
    branch: "main",
    head: { sha: "3f2a9c1d00aa", subject: "lease: renew early" },
    dirty: ["src/lease.ts"],
    untracked: [],
    ahead: 1,
    behind: 0
  },
  { _tag: "edit", source: session, at: 10, file: "src/lease.ts", tool: "Edit", added: 4, removed: 1 },
  {
    _tag: "command",
    source: session,
    at: 11,
    command: "npm test",
    exit_code: 1,
    failed: true,
    head: ["FAIL test/lease.test.ts"],
    tail: [],
    lines: 1
  },
  { _tag: "error", source: session, at: 12, tool: "Read", message: "File does not exist." },
  {
    _tag: "command",
    source: session,
    at: 13,
    command: "ls",
    exit_code: 0,
    failed: false,
    head: ["a"],
    tail: [],
    lines: 1
  },
  { _tag: "answer", source: session, at: 14, text: "The lease test fails: renewal comes too late." },
  ...workerDrafts,
  ...reviewItemArtifacts([
    new ReviewItem({
      id: "i7",
      kind: "permission",
      subject: { type: "session", id: "s2" },
      headline: "wants to use Bash: rm -rf build",
      since: 500,
      bullets: [],
      actions: [],
      provenance: "hook",
      dismissed: false,
      skipped_until: null
    }),
    new ReviewItem({
      id: "i8",
      kind: "stopped",
      subject: { type: "session", id: "s3" },
      headline: "dismissed, so not open",
      since: 600,
      bullets: [],
      actions: [],
      provenance: "hook",
      dismissed: true,
      skipped_until: null
    })
  ]),
  ...coverageArtifacts([{ task: "p0-bugs", sweep: 3, done: 40, skipped: 2, leased: 3, pending: 55, total: 100 }])
]

describe("workerArtifacts", () => {
  it("reads the last ending of each worker: result and change set, or failure with its last lines", () => {
    assert.deepStrictEqual(
      workerDrafts.map((d) => d._tag),
      ["result", "change_set", "failure"]
    )
    assert.deepStrictEqual(workerDrafts[2], {
      _tag: "failure",
      source: { type: "worker", id: "w2" },
      at: 1003,
      worker: "w2",
      reason: "exited 1",
      last_lines: ["npm ERR! missing script: tset"]
    })
    // Running again after a failure (a respawn, a retry): nothing to report yet.
    assert.deepStrictEqual(
      workerArtifacts("w2", [
        event(3, "worker.failed", "w2", { reason: "x" }),
        event(4, "worker.running", "w2", { from: "failed" })
      ]),
      []
    )
  })
})

describe("composeBundle", () => {
  const bundle = composeBundle({ id, createdAt: Date.UTC(2026, 10, 22, 3, 15), note: "", drafts, problems: ["p1"] })

  it("numbers the artifacts in the header's order", () => {
    assert.deepStrictEqual(
      bundle.artifacts.map((a) => [a.id, a.fact._tag]),
      [
        [`${id}@1`, "git"],
        [`${id}@2`, "edit"],
        [`${id}@3`, "error"],
        [`${id}@4`, "command"],
        [`${id}@5`, "result"],
        [`${id}@6`, "change_set"],
        [`${id}@7`, "failure"],
        [`${id}@8`, "review_item"],
        [`${id}@9`, "coverage"],
        [`${id}@10`, "answer"],
        [`${id}@11`, "command"]
      ]
    )
    assert.strictEqual(bundle.artifacts[3]?.title, "command `npm test` exited 1")
  })

  it("prints an artifact in full", () => {
    const failing = bundle.artifacts[3]?.fact
    assert.strictEqual(
      failing && artifactText(failing),
      [
        "$ npm test",
        "exited 1 (exit status 1), 1 line of output",
        "from: session s1",
        `at: ${new Date(11).toISOString()}`,
        "first lines:",
        "FAIL test/lease.test.ts"
      ].join("\n")
    )
    const result = bundle.artifacts[4]
    assert.include(
      result === undefined ? "" : artifactText(result.fact),
      "recommendations:\nrenew at a third of the ttl"
    )
  })

  it("writes every section a newcomer needs, each line naming its artifact", () => {
    const line = (text: string) => bundle.header.split("\n").find((l) => l.includes(text)) ?? `(no line with ${text})`
    assert.strictEqual(line("# "), `# Checkpoint ${id}: 1 file touched, 2 failures, 2 workers`)
    assert.include(bundle.header, "Saved 2026-11-22 03:15 UTC, 11 artifacts.")
    assert.strictEqual(
      line("branch"),
      `- branch \`main\` at 3f2a9c1d00 \`lease: renew early\`; 1 dirty, 0 untracked; ahead 1, behind 0 [${id}@1]`
    )
    assert.strictEqual(line("src/lease.ts` +4"), `- \`src/lease.ts\` +4 -1 (Edit) [${id}@2]`)
    // Most recent first: the Read error came after the failing npm test.
    const failures = bundle.header.split("## Failed commands and errors (most recent first)")[1] ?? ""
    assert.isBelow(failures.indexOf("Read failed: File does not exist."), failures.indexOf("`npm test` exited 1"))
    assert.strictEqual(line("npm test"), `- \`npm test\` exited 1: FAIL test/lease.test.ts [${id}@4]`)
    assert.strictEqual(
      line("w1 finished"),
      `- w1 finished (found, found 1): the lease is renewed after it expired [${id}@5]`
    )
    assert.strictEqual(line("recommends"), "  - recommends: renew at a third of the ttl")
    assert.include(line("w1 proposes"), `2 files +10 -3 (src/lease.ts, test/lease.test.ts) [${id}@6]`)
    assert.strictEqual(line("w2 failed"), `- w2 failed: exited 1 [${id}@7]`)
    assert.strictEqual(line("missing script"), "  - last output: `npm ERR! missing script: tset`")
    assert.strictEqual(line("permission:"), `- permission: wants to use Bash: rm -rf build [${id}@8]`)
    assert.notInclude(bundle.header, "dismissed, so not open")
    assert.strictEqual(line("p0-bugs"), `- p0-bugs sweep 3: 40 done, 2 skipped, 3 leased, 55 pending of 100 [${id}@9]`)
    assert.include(bundle.header, `> The lease test fails: renewal comes too late.\n\n[${id}@10]`)
    assert.include(bundle.header, "## Problems\n\n- p1\n")
    // An empty note leaves the two sections to fill, after the marker.
    assert.isTrue(bundle.header.endsWith(`${NOTE_MARKER}\n\n## Decisions\n\n## Next steps\n`))
  })

  it("caps the failures, most recent first, and says how many more there are", () => {
    const many = Array.from({ length: 12 }, (_, i): ArtifactDraft => ({
      _tag: "error",
      source: session,
      at: i,
      tool: "Read",
      message: `miss ${i}`
    }))
    const capped = composeBundle({ id, createdAt: 0, note: "", drafts: many, problems: [] })
    const listed = capped.header.split("\n").filter((l) => l.startsWith("- Read failed"))
    assert.strictEqual(listed.length, 10)
    assert.strictEqual(listed[0], `- Read failed: miss 11 [${id}@1]`)
    assert.include(capped.header, `- … and 2 more failures (\`trail checkpoint show ${id} --full\`)`)
    assert.strictEqual(capped.artifacts.length, 12)
  })

  it("keeps the note's own sections as written and titles the checkpoint from it", () => {
    const note =
      "Lease renewal fixed in w1's patch\n\n## Decisions\n\n- renew at ttl/3 (not ttl/2)\n\n## Next steps\n\n1. promote w1\n2. rerun `npm test`"
    const withNote = composeBundle({ id, createdAt: 0, note, drafts, problems: [] })
    assert.isTrue(withNote.header.startsWith(`# Checkpoint ${id}: Lease renewal fixed in w1's patch\n`))
    assert.isTrue(withNote.header.endsWith(`## Note\n\n${note}\n`))
    const parts = readHeader(withNote.header)
    assert.strictEqual(parts.title, "Lease renewal fixed in w1's patch")
    assert.isTrue(parts.hasHeader)
    assert.strictEqual(parts.decisions, "- renew at ttl/3 (not ttl/2)")
    assert.strictEqual(parts.nextSteps, "1. promote w1\n2. rerun `npm test`")
    assert.strictEqual(parts.note, `## Note\n\n${note}`)
  })
})

describe("noteSection", () => {
  it("adds the missing sections in their order, around the human's own", () => {
    assert.strictEqual(
      composeBundle({
        id,
        createdAt: 0,
        note: "why\n\n## Next steps\n- read it",
        drafts: [],
        problems: []
      }).header.split(`${NOTE_MARKER}\n\n`)[1],
      "## Note\n\nwhy\n\n## Decisions\n\n## Next steps\n- read it\n"
    )
    // The human's own spacing is kept.
    const spaced = "## Next steps\n\n- rerun the parser tests"
    assert.include(
      composeBundle({ id, createdAt: 0, note: spaced, drafts: [], problems: [] }).header,
      `## Decisions\n\n${spaced}\n`
    )
  })
})

describe("readHeader", () => {
  const header = composeBundle({
    id,
    createdAt: 0,
    note: "## Decisions\n\n- keep SQLite\n",
    drafts,
    problems: []
  }).header

  it("reads a file whose generated header a person removed", () => {
    const edited = header.slice(header.indexOf(NOTE_MARKER) + NOTE_MARKER.length)
    const parts = readHeader(edited)
    assert.isFalse(parts.hasHeader)
    assert.isNull(parts.title)
    assert.strictEqual(parts.decisions, "- keep SQLite")
    assert.strictEqual(parts.nextSteps, "")
    assert.strictEqual(readHeader("just a line someone wrote").note, "just a line someone wrote")
  })

  it("sets a section in place or before the note", () => {
    const summarized = setSection(header, "Summary", "The lease renews too late.")
    assert.strictEqual(readHeader(summarized).summary, "The lease renews too late.")
    assert.isBelow(summarized.indexOf("## Summary"), summarized.indexOf(NOTE_MARKER))
    const again = setSection(summarized, "Summary", "Second take.")
    assert.strictEqual(readHeader(again).summary, "Second take.")
    assert.strictEqual(again.split("## Summary").length, 2)
    assert.strictEqual(readHeader(setSection("no marker here", "Summary", "s")).summary, "s")
    // Everything else is untouched.
    assert.strictEqual(again.replace(/## Summary\n\nSecond take.\n\n/, ""), header)
  })
})
