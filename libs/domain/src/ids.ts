/**
 * Branded identifiers shared by every trail library.
 *
 * Each id is a `Schema` so it can be decoded at the edge (CLI flags, rows, hook payloads)
 * and carried through services as a distinct type.
 */
import { Either, Schema } from "effect"

const MAX_NAME_LENGTH = 128
// Printable, no control characters, no surrounding whitespace.
const NAME_PATTERN = /^[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?$/u

const name = (what: string) =>
  Schema.String.pipe(
    Schema.minLength(1, { message: () => `${what} must not be empty` }),
    Schema.maxLength(MAX_NAME_LENGTH, { message: () => `${what} must be at most ${MAX_NAME_LENGTH} characters` }),
    Schema.pattern(NAME_PATTERN, {
      message: () => `${what} must be printable text without control characters or surrounding whitespace`
    })
  )

/** A named, long-lived coverage campaign (`p0-bugs`, `refine`). 1–128 printable characters. */
export const TaskName = name("task name").pipe(Schema.brand("TaskName"))
export type TaskName = typeof TaskName.Type

/** Whatever calls trail: `a1`, `w3`, a Claude session id. 1–128 printable characters. */
export const AgentId = name("agent id").pipe(Schema.brand("AgentId"))
export type AgentId = typeof AgentId.Type

/** The 1-based number of a sweep within its task. */
export const SweepNumber = Schema.Int.pipe(Schema.greaterThanOrEqualTo(1), Schema.brand("SweepNumber"))
export type SweepNumber = typeof SweepNumber.Type

/**
 * Normalises a folder path given relative to the root into trail's canonical form:
 * POSIX separators, no `.` segments, no leading `./` or trailing `/`; the root itself is `"."`.
 *
 * Returns `Left(reason)` for an absolute path or one whose `..` segments climb above the root.
 * (Absolute paths inside the root are made relative by the caller, which knows the root.)
 */
export const normalizeFolderPath = (raw: string): Either.Either<string, string> => {
  if (raw.length === 0) return Either.left("is empty")
  if (raw.includes("\0")) return Either.left("contains a NUL byte")
  if (raw.startsWith("/")) return Either.left("is absolute; give it relative to the root")
  const out: Array<string> = []
  for (const segment of raw.split("/")) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") {
      if (out.length === 0) return Either.left("escapes the root")
      out.pop()
      continue
    }
    out.push(segment)
  }
  return Either.right(out.length === 0 ? "." : out.join("/"))
}

const isNormalized = (s: string) => {
  const normalized = normalizeFolderPath(s)
  return Either.isRight(normalized) && normalized.right === s
}

/** A folder of the root as a normalised relative POSIX path (`src/api`; the root is `.`). */
export const FolderPath = Schema.String.pipe(
  Schema.filter(isNormalized, { message: () => "must be a normalised relative path inside the root" }),
  Schema.brand("FolderPath")
)
export type FolderPath = typeof FolderPath.Type

/** The parent folder of a normalised folder path (`"."` for top-level folders and for the root). */
export const parentFolder = (path: FolderPath): FolderPath => {
  const slash = path.lastIndexOf("/")
  return FolderPath.make(slash < 0 ? "." : path.slice(0, slash), { disableValidation: true })
}
