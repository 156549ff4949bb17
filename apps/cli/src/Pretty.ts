/**
 * `--pretty` renderings: the same data as the JSON, laid out for a person (key/value cards,
 * tables, a progress bar). Colour only on a TTY and never when `NO_COLOR` is set.
 */

import stringWidth from "string-width"

/**
 * Characters that would act on a terminal instead of being shown: C0 controls but tab and
 * newline (ESC starts every escape sequence: OSC titles, clear screen, cursor moves; CR
 * overwrites a line), DEL, C1 controls (0x9b is a one-byte CSI), and the bidi overrides and
 * isolates that reorder what is shown ("Trojan Source", CVE-2021-42574).
 */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/**
 * Text from data (folder names, hook messages, worker output) made safe to print for a person:
 * each unsafe character is shown, not obeyed: C0 controls as their Unicode control picture
 * (ESC → `␛`, BEL → `␇`, CR → `␍`), DEL as `␡`, C1 controls and bidi controls as `\u009b`.
 * Tab and newline stay. trail's own colours are added after this, so they still work.
 */
export const safeText = (text: string): string =>
  text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0)
    if (code < 0x20) return String.fromCharCode(0x2400 + code)
    if (code === 0x7f) return "\u2421"
    return `\\u${code.toString(16).padStart(4, "0")}`
  })

/**
 * `value` with every string in it (object keys included) passed through {@link safeText}: the
 * one step between the data and a `--pretty` renderer. Objects keep their prototype, so a
 * Schema class's getters still work on the copy; dates, maps and sets are kept as they are.
 */
export const safeData = <A>(value: A): A =>
  // Safe: `clean` keeps each value's shape (a string stays a string, an array an array of the
  // same length, an object its prototype and fields); only the characters of strings change.
  clean(value) as A

const clean = (value: unknown): unknown => {
  if (typeof value === "string") return safeText(value)
  if (typeof value !== "object" || value === null) return value
  if (value instanceof Date || value instanceof Map || value instanceof Set) return value
  if (Array.isArray(value)) return value.map(clean)
  const copy: Record<string, unknown> = Object.create(Object.getPrototypeOf(value))
  for (const [key, field] of Object.entries(value)) copy[safeText(key)] = clean(field)
  return copy
}

const useColour = () => process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined

const sgr = (code: string) => (text: string) => (useColour() ? `\u001b[${code}m${text}\u001b[0m` : text)
export const bold = sgr("1")
export const dim = sgr("2")
export const green = sgr("32")
export const yellow = sgr("33")
export const cyan = sgr("36")
export const red = sgr("31")

/** Milliseconds since the epoch as a readable UTC time, or "—". */
export const time = (ms: number | null | undefined): string =>
  ms === null || ms === undefined
    ? "—"
    : new Date(ms)
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z")

const cell = (value: unknown): string => {
  if (value === null || value === undefined) return "—"
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(4)
  if (typeof value === "string") return value
  return JSON.stringify(value)
}

/** Text of printable ASCII only: one column a character. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

/**
 * Terminal columns `text` takes: colour codes take none, East Asian wide characters (日本語)
 * and emoji two, combining marks none (string-width, after Unicode UAX #11 and UTS #51).
 * Printable ASCII is counted directly: string-width builds its Unicode tables when first called
 * (~20 ms of a start), and most tables' headers and cells never need them.
 */
export const visibleWidth = (text: string): number => (PRINTABLE_ASCII.test(text) ? text.length : stringWidth(text))

/** Aligned `key  value` lines under an optional title. */
export const card = (title: string, fields: ReadonlyArray<readonly [string, unknown]>): string => {
  const width = Math.max(0, ...fields.map(([key]) => visibleWidth(key)))
  const lines = fields.map(([key, value]) => `  ${dim(pad(key, width))}  ${cell(value)}`)
  return [bold(title), ...lines].join("\n")
}

type Columns<A> = ReadonlyArray<readonly [keyof A & string, string]>

/** Each row's cells as text (times shown as times). */
const cellsOf = <A extends object>(rows: ReadonlyArray<A>, columns: Columns<A>) =>
  rows.map((row) =>
    columns.map(([key]) => {
      const value: unknown = row[key]
      return cell(key.endsWith("_at") && (typeof value === "number" || value === null) ? time(value) : value)
    })
  )

/** `widths` widened to the cells of `texts`. */
const widen = (widths: ReadonlyArray<number>, texts: ReadonlyArray<ReadonlyArray<string>>) =>
  widths.map((width, i) => Math.max(width, ...texts.map((t) => visibleWidth(t[i] ?? ""))))

const headerOf = <A>(columns: Columns<A>, widths: ReadonlyArray<number>) =>
  columns.map(([, h], i) => bold(pad(h, widths[i] ?? 0))).join("  ")

const linesOf = <A>(
  rows: ReadonlyArray<A>,
  texts: ReadonlyArray<ReadonlyArray<string>>,
  widths: ReadonlyArray<number>,
  colour?: (row: A, text: string) => string
) =>
  rows.map((row, r) => {
    const line = (texts[r] ?? [])
      .map((text, i) => pad(text, widths[i] ?? 0))
      .join("  ")
      .trimEnd()
    return colour === undefined ? line : colour(row, line)
  })

/** A table with a header row; `columns` picks and orders the fields. */
export const table = <A extends object>(
  rows: ReadonlyArray<A>,
  columns: Columns<A>,
  colour?: (row: A, text: string) => string
): string => {
  if (rows.length === 0) return dim("(none)")
  const texts = cellsOf(rows, columns)
  const widths = widen(
    columns.map(([, header]) => visibleWidth(header)),
    texts
  )
  return [headerOf(columns, widths), ...linesOf(rows, texts, widths, colour)].join("\n")
}

/**
 * A {@link table} printed chunk by chunk as its rows are read (a long listing): the header comes
 * with the first chunk, and each column is as wide as its widest cell read so far (a wider cell
 * in a later chunk widens the column from there on).
 */
export const tableInChunks = <A extends object>(columns: Columns<A>, colour?: (row: A, text: string) => string) => {
  let widths = columns.map(([, header]) => visibleWidth(header))
  return (rows: ReadonlyArray<A>, first: boolean): string => {
    const texts = cellsOf(rows, columns)
    widths = widen(widths, texts)
    const lines = linesOf(rows, texts, widths, colour)
    return (first ? [headerOf(columns, widths), ...lines] : lines).join("\n")
  }
}

/** `[██████░░░░] 60.0%` */
export const bar = (percent: number, width = 30): string => {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * width)
  return `[${green("█".repeat(filled))}${dim("░".repeat(width - filled))}] ${percent.toFixed(1)}%`
}

/** `text` padded with spaces to `width` terminal columns (see {@link visibleWidth}). */
export const pad = (text: string, width: number) => text + " ".repeat(Math.max(0, width - visibleWidth(text)))

/**
 * The width to lay text out in: the terminal's columns on a TTY, else `$COLUMNS`, else 80;
 * never less than 40.
 */
export const termWidth = (stream: NodeJS.WriteStream = process.stdout): number => {
  const fromEnv = Number(process.env["COLUMNS"])
  const columns =
    stream.isTTY === true && stream.columns > 0
      ? stream.columns
      : Number.isInteger(fromEnv) && fromEnv > 0
        ? fromEnv
        : 80
  return Math.max(40, columns)
}

/**
 * Greedy word wrap of one paragraph into lines of at most `width` visible characters (a word
 * longer than `width` gets a line of its own, uncut: a path or URL must stay copyable).
 */
export const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line === "") line = word
    else if (visibleWidth(line) + 1 + visibleWidth(word) <= width) line += ` ${word}`
    else {
      lines.push(line)
      line = word
    }
  }
  if (line !== "" || lines.length === 0) lines.push(line)
  return lines
}
