/**
 * A checkpoint's bundle: its artifacts numbered in order and the orientation header composed
 * from them and the human's note (SPEC §4). The header is plain markdown a person may edit.
 */
import type { Artifact, ArtifactDraft, CheckpointId } from "@trail/domain"
import { ArtifactId } from "@trail/domain"
import { NOTE_MARKER, noteSection, noteTitle } from "./Header.js"

export interface Bundle {
  readonly id: CheckpointId
  /** ms since the epoch. */
  readonly createdAt: number
  /** Numbered `<id>@1`, `<id>@2`, … in the order the header lists them. */
  readonly artifacts: ReadonlyArray<Artifact>
  /** The `.md` file's text: header sections, then the note's `## Decisions` / `## Next steps`. */
  readonly header: string
  /** What could not be read (a missing transcript, a truncated line, a cap reached), in words. */
  readonly problems: ReadonlyArray<string>
}

/** How many lines of each list the header shows (the artifacts keep everything). */
export interface HeaderCaps {
  /** Files touched (default 30). */
  readonly files: number
  /** Failed commands and errors together, most recent first (default 10). */
  readonly failures: number
  /** Dirty and untracked paths named, each (default 10). */
  readonly paths: number
  /** Lines of the last answer quoted (default 8). */
  readonly answerLines: number
}

export const defaultHeaderCaps: HeaderCaps = { files: 30, failures: 10, paths: 10, answerLines: 8 }

type Draft<K extends ArtifactDraft["_tag"]> = Extract<ArtifactDraft, { readonly _tag: K }>

const firstLine = (text: string, chars = 120) => {
  const line = text.trim().split("\n")[0] ?? ""
  const more = line.length > chars || text.trim().includes("\n")
  return `${line.slice(0, chars)}${more ? "…" : ""}`
}

/** Inline code that survives backticks inside it. */
const code = (text: string, chars = 100) => {
  const line = firstLine(text, chars)
  return line.includes("`") ? `\`\` ${line} \`\`` : `\`${line}\``
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const ending = (command: Draft<"command">) =>
  command.exit_code !== null && command.exit_code !== 0
    ? `exited ${command.exit_code}`
    : command.failed
      ? "failed"
      : "ok"

const shortSha = (sha: string) => sha.slice(0, 10)

/** The one-line title of an artifact, for the header, listings and search results. */
export const artifactTitle = (draft: ArtifactDraft): string => {
  switch (draft._tag) {
    case "edit":
      return `edit ${draft.file} +${draft.added} -${draft.removed} (${draft.tool})`
    case "command":
      return `command ${code(draft.command)} ${ending(draft)}`
    case "error":
      return `error in ${draft.tool}: ${firstLine(draft.message)}`
    case "answer":
      return `answer: ${firstLine(draft.text)}`
    case "result":
      return `${draft.worker} finished (${draft.outcome}): ${firstLine(draft.summary)}`
    case "change_set":
      return `${draft.worker} proposes a change: ${plural(draft.files, "file")} +${draft.insertions} -${draft.deletions}`
    case "failure":
      return `${draft.worker} failed: ${firstLine(draft.reason)}`
    case "review_item":
      return `review item ${draft.kind}: ${firstLine(draft.headline)}`
    case "coverage":
      return `coverage ${draft.task} sweep ${draft.sweep}: ${draft.done + draft.skipped}/${draft.total} covered`
    case "git":
      return `git ${draft.branch ?? "(detached)"} at ${draft.head === null ? "(no commit)" : `${shortSha(draft.head.sha)} ${firstLine(draft.head.subject, 80)}`}`
  }
}

/**
 * An artifact's full text, for `trail checkpoint show ID --artifact N` and for search: every
 * field a person needs, several lines, no markdown.
 */
export const artifactText = (draft: ArtifactDraft): string => {
  const lines = (label: string, list: ReadonlyArray<string>) => (list.length === 0 ? [] : [`${label}:`, ...list])
  const at = draft.at === null ? [] : [`at: ${new Date(draft.at).toISOString()}`]
  const from = [`from: ${draft.source.type}${draft.source.id === null ? "" : ` ${draft.source.id}`}`, ...at]
  switch (draft._tag) {
    case "edit":
      return [`edit ${draft.file}`, `+${draft.added} -${draft.removed} by ${draft.tool}`, ...from].join("\n")
    case "command":
      return [
        `$ ${draft.command}`,
        `${ending(draft)}${draft.exit_code === null ? "" : ` (exit status ${draft.exit_code})`}, ${plural(draft.lines, "line")} of output`,
        ...from,
        ...lines("first lines", draft.head),
        ...(draft.lines > draft.head.length + draft.tail.length ? ["…"] : []),
        ...lines("last lines", draft.tail)
      ].join("\n")
    case "error":
      return [`${draft.tool} failed`, ...from, "", draft.message].join("\n")
    case "answer":
      return [`answer`, ...from, "", draft.text].join("\n")
    case "result":
      return [
        `${draft.worker} finished: ${draft.outcome}${draft.found === null ? "" : ` (found ${draft.found})`}`,
        ...from,
        "",
        draft.summary,
        ...lines("evidence", draft.evidence),
        ...lines("recommendations", draft.recommend)
      ].join("\n")
    case "change_set":
      return [
        `${draft.worker} proposes a change: ${plural(draft.files, "file")} +${draft.insertions} -${draft.deletions}`,
        ...from,
        ...lines("files", draft.diffstat)
      ].join("\n")
    case "failure":
      return [`${draft.worker} failed: ${draft.reason}`, ...from, ...lines("last output", draft.last_lines)].join("\n")
    case "review_item":
      return [`review item ${draft.item} (${draft.kind})`, ...from, "", draft.headline].join("\n")
    case "coverage":
      return [
        `${draft.task} sweep ${draft.sweep}`,
        `${draft.done} done, ${draft.skipped} skipped, ${draft.leased} leased, ${draft.pending} pending of ${draft.total}`,
        ...from
      ].join("\n")
    case "git":
      return [
        `branch: ${draft.branch ?? "(detached HEAD)"}`,
        `HEAD: ${draft.head === null ? "(no commit)" : `${draft.head.sha} ${draft.head.subject}`}`,
        `upstream: ${draft.ahead === null || draft.behind === null ? "none" : `ahead ${draft.ahead}, behind ${draft.behind}`}`,
        ...lines("dirty", draft.dirty),
        ...lines("untracked", draft.untracked)
      ].join("\n")
  }
}

const newestFirst = <A extends ArtifactDraft>(drafts: ReadonlyArray<A>) =>
  drafts
    .map((draft, index) => ({ draft, index }))
    .sort((a, b) => (b.draft.at ?? 0) - (a.draft.at ?? 0) || b.index - a.index)
    .map(({ draft }) => draft)

/** The drafts of one kind, typed as that kind. */
export const ofKind = <K extends ArtifactDraft["_tag"]>(drafts: ReadonlyArray<ArtifactDraft>, kind: K) =>
  drafts.filter((draft): draft is Draft<K> => draft._tag === kind)

/** The bundle's title when the note gives none: what happened, counted. */
export const bundleTitle = (note: string, drafts: ReadonlyArray<ArtifactDraft>): string => {
  const fromNote = noteTitle(note)
  if (fromNote !== null) return firstLine(fromNote, 100)
  const files = ofKind(drafts, "edit").length
  const failed = ofKind(drafts, "command").filter((c) => c.failed).length + ofKind(drafts, "error").length
  const workers = new Set(
    drafts.flatMap((d) => (d._tag === "result" || d._tag === "failure" || d._tag === "change_set" ? [d.worker] : []))
  ).size
  const parts = [
    files > 0 ? `${plural(files, "file")} touched` : null,
    failed > 0 ? `${plural(failed, "failure")}` : null,
    workers > 0 ? `${plural(workers, "worker")}` : null
  ].filter((part) => part !== null)
  return parts.length === 0 ? "a checkpoint" : parts.join(", ")
}

/**
 * The bundle of checkpoint `id`: the drafts numbered `<id>@n` in the header's order (git, files
 * touched, failures most recent first, workers, open review items, coverage, answers most recent
 * first, then the successful commands), and the header: title line, git state, files touched
 * with +/-, failed commands and errors (most recent first, capped), worker outcomes and
 * recommendations, open review items, coverage of active sweeps, the last answer, problems, then
 * {@link NOTE_MARKER} and the note ({@link noteSection}). Every line about an artifact ends with
 * its id. Pure; `createdAt` in ms.
 */
export const composeBundle = (input: {
  readonly id: CheckpointId
  readonly createdAt: number
  readonly note: string
  readonly drafts: ReadonlyArray<ArtifactDraft>
  readonly problems: ReadonlyArray<string>
  readonly caps?: HeaderCaps
}): Bundle => {
  const caps = input.caps ?? defaultHeaderCaps
  const drafts = input.drafts
  const gits = ofKind(drafts, "git")
  const edits = newestFirst(ofKind(drafts, "edit"))
  const failures = newestFirst(
    drafts.filter(
      (d): d is Draft<"command"> | Draft<"error"> => (d._tag === "command" && d.failed) || d._tag === "error"
    )
  )
  const workerDrafts = drafts.filter(
    (d): d is Draft<"result"> | Draft<"change_set"> | Draft<"failure"> =>
      d._tag === "result" || d._tag === "change_set" || d._tag === "failure"
  )
  const workerIds = [...new Set(workerDrafts.map((d) => d.worker))]
  const workers = workerIds.flatMap((worker) => workerDrafts.filter((d) => d.worker === worker))
  const items = ofKind(drafts, "review_item")
  const coverage = ofKind(drafts, "coverage")
  const answers = newestFirst(ofKind(drafts, "answer"))
  const succeeded = newestFirst(ofKind(drafts, "command").filter((c) => !c.failed))
  const ordered: ReadonlyArray<ArtifactDraft> = [
    ...gits,
    ...edits,
    ...failures,
    ...workers,
    ...items,
    ...coverage,
    ...answers,
    ...succeeded
  ]
  const artifacts: ReadonlyArray<Artifact> = ordered.map((fact, index) => ({
    id: ArtifactId.make(`${input.id}@${index + 1}`),
    title: artifactTitle(fact),
    fact
  }))
  const idOf = new Map(artifacts.map((artifact) => [artifact.fact, artifact.id]))
  const ref = (draft: ArtifactDraft) => `[${idOf.get(draft) ?? "?"}]`

  const out: Array<string> = []
  const section = (name: string, lines: ReadonlyArray<string>) => {
    if (lines.length > 0) out.push(`## ${name}`, "", ...lines, "")
  }
  const more = (shown: number, total: number, what: string) =>
    total > shown ? [`- … and ${total - shown} more ${what} (\`trail checkpoint show ${input.id} --full\`)`] : []

  out.push(`# Checkpoint ${input.id}: ${bundleTitle(input.note, drafts)}`, "")
  out.push(
    `Saved ${new Date(input.createdAt).toISOString().replace("T", " ").slice(0, 16)} UTC, ${plural(artifacts.length, "artifact")}. ` +
      `Pull one in full with \`trail checkpoint show ${input.id} --artifact N\` (N: the number after @).`,
    ""
  )

  section(
    "Git",
    gits.flatMap((g) => {
      const head = g.head === null ? "no commit yet" : `${shortSha(g.head.sha)} ${code(g.head.subject, 80)}`
      const upstream = g.ahead === null || g.behind === null ? "no upstream" : `ahead ${g.ahead}, behind ${g.behind}`
      const paths = (label: string, list: ReadonlyArray<string>) =>
        list.length === 0
          ? []
          : [
              `  - ${label}: ${list
                .slice(0, caps.paths)
                .map((p) => code(p))
                .join(", ")}${list.length > caps.paths ? ` … (${list.length} in all)` : ""}`
            ]
      return [
        `- branch ${g.branch === null ? "(detached HEAD)" : code(g.branch)} at ${head}; ${g.dirty.length} dirty, ${g.untracked.length} untracked; ${upstream} ${ref(g)}`,
        ...paths("dirty", g.dirty),
        ...paths("untracked", g.untracked)
      ]
    })
  )

  section("Files touched", [
    ...edits.slice(0, caps.files).map((e) => `- ${code(e.file)} +${e.added} -${e.removed} (${e.tool}) ${ref(e)}`),
    ...more(caps.files, edits.length, "files")
  ])

  section("Failed commands and errors (most recent first)", [
    ...failures.slice(0, caps.failures).map((f) => {
      if (f._tag === "error") return `- ${f.tool} failed: ${firstLine(f.message)} ${ref(f)}`
      // The first line of output is where a failing command usually says why.
      const said = [...f.head, ...f.tail].find((line) => line.trim() !== "")
      return `- ${code(f.command)} ${ending(f)}${said === undefined ? "" : `: ${firstLine(said)}`} ${ref(f)}`
    }),
    ...more(caps.failures, failures.length, "failures")
  ])

  section(
    "Workers",
    workers.flatMap((w) => {
      switch (w._tag) {
        case "result":
          return [
            `- ${w.worker} finished (${w.outcome}${w.found === null ? "" : `, found ${w.found}`}): ${firstLine(w.summary)} ${ref(w)}`,
            ...(w.recommend.length > 0 ? [`  - recommends: ${w.recommend.map((r) => firstLine(r)).join("; ")}`] : []),
            ...(w.evidence.length > 0 ? [`  - evidence: ${w.evidence.map((e) => firstLine(e, 80)).join("; ")}`] : [])
          ]
        case "change_set":
          return [
            `- ${w.worker} proposes a change: ${plural(w.files, "file")} +${w.insertions} -${w.deletions}${w.diffstat.length > 0 ? ` (${w.diffstat.slice(0, caps.paths).join(", ")}${w.diffstat.length > caps.paths ? ", …" : ""})` : ""} ${ref(w)}`
          ]
        case "failure":
          return [
            `- ${w.worker} failed: ${firstLine(w.reason)} ${ref(w)}`,
            ...(w.last_lines.length > 0
              ? [`  - last output: ${code(w.last_lines[w.last_lines.length - 1] ?? "")}`]
              : [])
          ]
      }
    })
  )

  section(
    "Open review items",
    items.map((i) => `- ${i.kind}: ${firstLine(i.headline)} ${ref(i)}`)
  )

  section(
    "Coverage of active sweeps",
    coverage.map(
      (c) =>
        `- ${c.task} sweep ${c.sweep}: ${c.done} done, ${c.skipped} skipped, ${c.leased} leased, ${c.pending} pending of ${c.total} ${ref(c)}`
    )
  )

  const last = answers[0]
  if (last !== undefined) {
    const lines = last.text.trim().split("\n")
    section("Last answer", [
      ...lines.slice(0, caps.answerLines).map((line) => `> ${line}`.trimEnd()),
      ...(lines.length > caps.answerLines ? ["> …"] : []),
      "",
      ref(last)
    ])
  }

  section(
    "Problems",
    input.problems.map((p) => `- ${p}`)
  )

  out.push(NOTE_MARKER, "", noteSection(input.note))
  return {
    id: input.id,
    createdAt: input.createdAt,
    artifacts,
    header: out.join("\n"),
    problems: input.problems
  }
}
