/**
 * The repository's state for a checkpoint's `git` artifact (SPEC §4): branch (null when
 * detached), HEAD's sha and subject (null before the first commit), dirty and untracked files
 * (`git status --porcelain=v1 -z`), ahead/behind of the upstream (null without one).
 *
 * Runs `git` through @effect/platform's `Command`. Never fails: a folder that is not in a
 * repository, or git missing, gives no artifact and a problem in words.
 */
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as PlatformError from "@effect/platform/Error"
import type { ArtifactDraft } from "@trail/domain"
import { Chunk, Effect, Either, Stream } from "effect"

const collect = (stream: Stream.Stream<Uint8Array, PlatformError.PlatformError>) =>
  Stream.runCollect(Stream.decodeText(stream)).pipe(Effect.map((chunks) => Chunk.join(chunks, "")))

/** git's stdout, or its stderr (or the spawn error) as the failure. */
const git = (cwd: string, args: ReadonlyArray<string>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const executor = yield* CommandExecutor.CommandExecutor
      const process = yield* executor.start(
        Command.make("git", ...args).pipe(Command.workingDirectory(cwd), Command.env({ GIT_OPTIONAL_LOCKS: "0" }))
      )
      const [stdout, stderr, code] = yield* Effect.all(
        [collect(process.stdout), collect(process.stderr), process.exitCode],
        {
          concurrency: 3
        }
      )
      return code === 0 ? Either.right(stdout) : Either.left(stderr.trim() || `git ${args[0] ?? ""} exited ${code}`)
    })
  ).pipe(
    Effect.catchAll((error): Effect.Effect<Either.Either<string, string>> => Effect.succeed(Either.left(error.message)))
  )

/** `git status --porcelain=v1 -z` records: `XY path`, a rename's or copy's source path after it. */
export const parseStatus = (out: string) => {
  const dirty: Array<string> = []
  const untracked: Array<string> = []
  const records = out.split("\0")
  for (let i = 0; i < records.length; i++) {
    const record = records[i] ?? ""
    if (record.length < 4) continue
    const code = record.slice(0, 2)
    const path = record.slice(3)
    if (code === "??") untracked.push(path)
    else if (code !== "!!") dirty.push(path)
    if (code.includes("R") || code.includes("C")) i++
  }
  return { dirty, untracked }
}

/** The `git` draft of the repository holding `cwd`, or null and the problem. */
export const gitArtifact = (
  cwd: string
): Effect.Effect<
  { readonly draft: ArtifactDraft | null; readonly problems: ReadonlyArray<string> },
  never,
  CommandExecutor.CommandExecutor
> =>
  Effect.gen(function* () {
    const inside = yield* git(cwd, ["rev-parse", "--is-inside-work-tree"])
    if (Either.isLeft(inside) || inside.right.trim() !== "true")
      return {
        draft: null,
        problems: [
          `git: ${cwd} is not in a git work tree, no git state recorded${Either.isLeft(inside) ? ` (${inside.left})` : ""}`
        ]
      }
    const [branch, head, status, counts] = yield* Effect.all(
      [
        git(cwd, ["symbolic-ref", "--short", "-q", "HEAD"]),
        git(cwd, ["log", "-1", "--format=%H%x00%s"]),
        git(cwd, ["status", "--porcelain=v1", "-z", "--untracked-files=all"]),
        git(cwd, ["rev-list", "--left-right", "--count", "HEAD...@{upstream}"])
      ],
      { concurrency: 2 }
    )
    const problems: Array<string> = []
    const headParts = Either.isRight(head) ? head.right.trim().split("\0") : []
    const sha = headParts[0] ?? ""
    const files = Either.isRight(status) ? parseStatus(status.right) : { dirty: [], untracked: [] }
    if (Either.isLeft(status)) problems.push(`git status failed: ${status.left}`)
    const [ahead, behind] = Either.isRight(counts) ? counts.right.trim().split(/\s+/).map(Number) : []
    const draft: ArtifactDraft = {
      _tag: "git",
      source: { type: "git", id: null },
      at: null,
      branch: Either.isRight(branch) && branch.right.trim() !== "" ? branch.right.trim() : null,
      head: sha === "" ? null : { sha, subject: headParts.slice(1).join("\0") },
      dirty: files.dirty,
      untracked: files.untracked,
      ahead: ahead !== undefined && Number.isInteger(ahead) ? ahead : null,
      behind: behind !== undefined && Number.isInteger(behind) ? behind : null
    }
    return { draft, problems }
  })
