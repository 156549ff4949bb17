/**
 * Change sets (SPEC §2): a worker whose kind has `worktree: true` edits a detached git worktree
 * (`git worktree add --detach .trail/worktrees/<id>`), and what it changed is proposed to the
 * human as one change set.
 *
 * - `diffStat` / `diff`: everything the worker changed against the commit its worktree started
 *   from, new files included (`git add -A` in the worktree, then `git diff --cached <base>`).
 * - `promote`: applies the change set to the root's working tree, only after a clean
 *   `git apply --check`; nothing is committed or merged. A patch that does not apply fails with
 *   {@link PromoteConflict} and leaves the root untouched.
 * - `discard`: removes the worktree.
 *
 * Errors: {@link GitError} (git failed; its stderr in `detail`), {@link PromoteConflict}.
 */
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as PlatformError from "@effect/platform/Error"
import { Chunk, Effect, Schema, Stream } from "effect"

export class GitError extends Schema.TaggedError<GitError>()("GitError", {
  operation: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `git ${this.operation} failed: ${this.detail}`
  }
}

export class PromoteConflict extends Schema.TaggedError<PromoteConflict>()("PromoteConflict", {
  worktree: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `the change set does not apply cleanly to the root (nothing was changed): ${this.detail}`
  }
}

/** A worker's worktree and the commit it started from. */
export interface Worktree {
  readonly path: string
  readonly base: string
}

export interface DiffStat {
  readonly files: number
  readonly insertions: number
  readonly deletions: number
  /** Changed paths, relative to the repository. */
  readonly paths: ReadonlyArray<string>
}

const collect = (stream: Stream.Stream<Uint8Array, PlatformError.PlatformError>) =>
  Stream.runCollect(Stream.decodeText(stream)).pipe(Effect.map((chunks) => Chunk.join(chunks, "")))

/** Runs git in `cwd` (with `input` on stdin); fails with its stderr unless it exits 0. */
const git = (cwd: string, operation: string, args: ReadonlyArray<string>, input?: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const executor = yield* CommandExecutor.CommandExecutor
      let command = Command.make("git", ...args).pipe(Command.workingDirectory(cwd))
      if (input !== undefined) command = Command.feed(command, input)
      const process = yield* executor.start(command)
      const [stdout, stderr, code] = yield* Effect.all(
        [collect(process.stdout), collect(process.stderr), process.exitCode],
        {
          concurrency: 3
        }
      )
      if (code !== 0) return yield* new GitError({ operation, detail: stderr.trim() || `exit ${code}` })
      return stdout
    })
  ).pipe(
    Effect.catchTags({
      SystemError: (error) => new GitError({ operation, detail: error.message }),
      BadArgument: (error) => new GitError({ operation, detail: error.message })
    })
  )

/** Creates `<root>/.trail/worktrees/<id>`, detached at the root's HEAD. */
export const createWorktree = (root: string, id: string) =>
  Effect.gen(function* () {
    const base = (yield* git(root, "rev-parse", ["rev-parse", "HEAD"])).trim()
    const path = `${root}/.trail/worktrees/${id}`
    yield* git(root, "worktree add", ["worktree", "add", "--detach", path, base])
    return { path, base } satisfies Worktree
  })

/** Stages everything in the worktree, so new and deleted files are part of the change set. */
const stageAll = (worktree: Worktree) => git(worktree.path, "add", ["add", "-A"])

/** What the worker changed, counted. */
export const diffStat = (worktree: Worktree) =>
  Effect.gen(function* () {
    yield* stageAll(worktree)
    const out = yield* git(worktree.path, "diff --numstat", ["diff", "--cached", "--numstat", "-z", worktree.base])
    let insertions = 0
    let deletions = 0
    const paths: Array<string> = []
    // -z: "added\tdeleted\tpath\0"; binary files have "-" counts.
    for (const record of out.split("\0")) {
      const match = /^(\d+|-)\t(\d+|-)\t(.*)$/s.exec(record)
      if (match === null || match[3] === undefined) continue
      insertions += match[1] === "-" ? 0 : Number(match[1])
      deletions += match[2] === "-" ? 0 : Number(match[2])
      paths.push(match[3])
    }
    return { files: paths.length, insertions, deletions, paths } satisfies DiffStat
  })

/** The change set as a binary-safe patch against the worktree's base. */
export const diff = (worktree: Worktree) =>
  Effect.zipRight(stageAll(worktree), git(worktree.path, "diff", ["diff", "--cached", "--binary", worktree.base]))

/**
 * Applies the change set to the root's working tree after a clean `git apply --check`.
 * Returns what was applied. An empty change set applies nothing.
 */
export const promote = (root: string, worktree: Worktree) =>
  Effect.gen(function* () {
    const stat = yield* diffStat(worktree)
    if (stat.files === 0) return stat
    const patch = yield* diff(worktree)
    yield* git(root, "apply --check", ["apply", "--check", "--binary", "-"], patch).pipe(
      Effect.catchTag("GitError", (error) => new PromoteConflict({ worktree: worktree.path, detail: error.detail }))
    )
    yield* git(root, "apply", ["apply", "--binary", "-"], patch)
    return stat
  })

/** Removes the worktree (and git's record of it). */
export const discard = (root: string, worktree: Worktree) =>
  git(root, "worktree remove", ["worktree", "remove", "--force", worktree.path]).pipe(Effect.asVoid)
