/**
 * Row readers for the scheduler's hot path (claim, complete). Each checks every column it reads
 * and throws {@link RowShapeError} on anything unexpected, which the database maps to a
 * `corrupt` StoreError: rows are decoded, never cast. They exist instead of `Schema` decoders
 * because a claim and a completion must cost little more than SQLite itself
 * (docs/benchmarks.md), and a Schema decode of a row costs several microseconds.
 */

/** A row did not have the shape its statement promises. */
export class RowShapeError extends Error {
  constructor(column: string, value: unknown) {
    super(`column ${column} holds ${typeof value === "string" ? JSON.stringify(value) : String(value)}`)
  }
}

type Row = Record<string, unknown>

const isRow = (row: unknown): row is Row => typeof row === "object" && row !== null

/** The row itself, or a RowShapeError when the statement returned something else. */
export const row = (value: unknown, what: string): Row => {
  if (!isRow(value)) throw new RowShapeError(what, value)
  return value
}

/** A row read as the array of its column values (`Connection.raw`), or a RowShapeError. */
export const cells = (value: unknown, what: string): ReadonlyArray<unknown> => {
  if (!Array.isArray(value)) throw new RowShapeError(what, value)
  return value
}

/** `value`, read from `column`, as an integer, or a RowShapeError naming the column. */
export const asInt = (value: unknown, column: string): number => {
  if (typeof value !== "number" || !Number.isInteger(value)) throw new RowShapeError(column, value)
  return value
}

export const asNum = (value: unknown, column: string): number => {
  if (typeof value !== "number" || Number.isNaN(value)) throw new RowShapeError(column, value)
  return value
}

export const asText = (value: unknown, column: string): string => {
  if (typeof value !== "string") throw new RowShapeError(column, value)
  return value
}

/** `value` as one of `literals` (the literal itself: one string shared by every row). */
export const asOneOf = <L extends string>(value: unknown, column: string, literals: ReadonlyArray<L>): L => {
  const literal = literals.find((l) => l === value)
  if (literal === undefined) throw new RowShapeError(column, value)
  return literal
}

export const int = (r: Row, column: string): number => asInt(r[column], column)

export const intOrNull = (r: Row, column: string): number | null => (r[column] === null ? null : int(r, column))

export const num = (r: Row, column: string): number => asNum(r[column], column)

export const text = (r: Row, column: string): string => asText(r[column], column)

export const textOrNull = (r: Row, column: string): string | null => (r[column] === null ? null : text(r, column))

/** One of `literals`. */
export const oneOf = <L extends string>(r: Row, column: string, literals: ReadonlyArray<L>): L =>
  asOneOf(r[column], column, literals)
