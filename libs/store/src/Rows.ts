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

export const int = (r: Row, column: string): number => {
  const value = r[column]
  if (typeof value !== "number" || !Number.isInteger(value)) throw new RowShapeError(column, value)
  return value
}

export const intOrNull = (r: Row, column: string): number | null => (r[column] === null ? null : int(r, column))

export const num = (r: Row, column: string): number => {
  const value = r[column]
  if (typeof value !== "number" || Number.isNaN(value)) throw new RowShapeError(column, value)
  return value
}

export const text = (r: Row, column: string): string => {
  const value = r[column]
  if (typeof value !== "string") throw new RowShapeError(column, value)
  return value
}

export const textOrNull = (r: Row, column: string): string | null => (r[column] === null ? null : text(r, column))

/** One of `literals`. */
export const oneOf = <L extends string>(r: Row, column: string, literals: ReadonlyArray<L>): L => {
  const value = r[column]
  const literal = literals.find((l) => l === value)
  if (literal === undefined) throw new RowShapeError(column, value)
  return literal
}
