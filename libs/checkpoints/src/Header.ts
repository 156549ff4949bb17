/**
 * Reading a checkpoint's `.md` back (SPEC §4: plain markdown a person may edit; edits are
 * respected). The file is the generated header, a marker line, then the note with its
 * `## Decisions` and `## Next steps` sections. `trail continue` prints the file as it is; these
 * helpers find its parts for listings and for `--summarize`, and still work when a person
 * removed the header, the marker or the title.
 */

/** The line between the generated header and the human's note (an HTML comment: invisible when rendered). */
export const NOTE_MARKER =
  "<!-- trail: the note starts below. Edit anything; `trail continue` prints this file as it is. -->"

export interface HeaderParts {
  /** The `# ` title's text (without `Checkpoint <id>: `); null when there is no title line. */
  readonly title: string | null
  /** Whether the generated part is still there (the marker line is). */
  readonly hasHeader: boolean
  /** The note: what follows the marker, or the whole file when the marker is gone. */
  readonly note: string
  /** Each `## Name` section's body (trimmed), by name, first occurrence. */
  readonly sections: ReadonlyMap<string, string>
  readonly decisions: string | null
  readonly nextSteps: string | null
  readonly summary: string | null
}

const HEADING = /^## +(.+?)\s*$/

/** The `## ` sections of `markdown`: name → body, trimmed; the first of a repeated name wins. */
export const sectionsOf = (markdown: string): ReadonlyMap<string, string> => {
  const sections = new Map<string, string>()
  let name: string | null = null
  let body: Array<string> = []
  const close = () => {
    if (name !== null && !sections.has(name)) sections.set(name, body.join("\n").trim())
  }
  let fence = false
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence
    const heading = fence ? null : HEADING.exec(line)
    if (heading?.[1] !== undefined) {
      close()
      name = heading[1]
      body = []
    } else if (line !== NOTE_MARKER) body.push(line)
  }
  close()
  return sections
}

/** The parts of a checkpoint's `.md`, as edited or not. */
export const readHeader = (markdown: string): HeaderParts => {
  const text = markdown.replace(/\r\n/g, "\n")
  const lines = text.split("\n")
  const marker = lines.indexOf(NOTE_MARKER)
  const titleLine = lines.find((line) => /^# +\S/.test(line))
  const title =
    titleLine === undefined
      ? null
      : titleLine
          .replace(/^# +/, "")
          .replace(/^Checkpoint +cp-\S+?:\s*/, "")
          .trim()
  const sections = sectionsOf(text)
  return {
    title,
    hasHeader: marker !== -1,
    note: (marker === -1 ? text : lines.slice(marker + 1).join("\n")).trim(),
    sections,
    decisions: sections.get("Decisions") ?? null,
    nextSteps: sections.get("Next steps") ?? null,
    summary: sections.get("Summary") ?? null
  }
}

/**
 * `markdown` with its `## name` section's body set to `body`: replaced where the section is,
 * else inserted before the note (or appended when the marker is gone).
 */
export const setSection = (markdown: string, name: string, body: string): string => {
  const lines = markdown.split("\n")
  const block = [`## ${name}`, "", body.trim(), ""]
  const start = lines.findIndex((line) => HEADING.exec(line)?.[1] === name)
  if (start !== -1) {
    let end = start + 1
    while (end < lines.length && !HEADING.test(lines[end] ?? "") && lines[end] !== NOTE_MARKER) end++
    return [...lines.slice(0, start), ...block, ...lines.slice(end)].join("\n")
  }
  const marker = lines.indexOf(NOTE_MARKER)
  if (marker === -1) return `${markdown.replace(/\n*$/, "")}\n\n${block.join("\n")}`
  return [...lines.slice(0, marker), ...block, ...lines.slice(marker)].join("\n")
}

/**
 * The note part of a new checkpoint's file: the note as the human wrote it, with `## Decisions`
 * and `## Next steps` added empty when it lacks them. A note with no `## ` heading of its own
 * goes under `## Note`.
 */
export const noteSection = (note: string): string => {
  const text = note.replace(/\r\n/g, "\n").trim()
  const own = sectionsOf(text)
  let body = text === "" || HEADING.test(text.split("\n")[0] ?? "") ? text : `## Note\n\n${text}`
  // Decisions before Next steps, wherever the human's own Next steps is.
  if (!own.has("Decisions"))
    body = own.has("Next steps")
      ? body.replace(/^## +Next steps[ \t]*$/m, "## Decisions\n\n## Next steps")
      : `${body}\n\n## Decisions`
  if (!own.has("Next steps")) body = `${body}\n\n## Next steps`
  return `${body.trim()}\n`
}

/** A checkpoint's title from its note: the first line that says something (a heading's text counts). */
export const noteTitle = (note: string): string | null => {
  for (const line of note.split("\n")) {
    const text = line
      .replace(/^#+\s*/, "")
      .replace(/^[-*]\s+/, "")
      .trim()
    if (text !== "" && text !== "Note" && text !== "Decisions" && text !== "Next steps") return text
  }
  return null
}
