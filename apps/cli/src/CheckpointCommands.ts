/**
 * Checkpoints on the command line (SPEC §4): `trail checkpoint [-m NOTE | --edit] [--session ID]
 * [--worker ID]… [--once] [--summarize]`, `trail continue [ID|last] [--spawn [--as KIND]]`,
 * `trail checkpoint show ID [--artifact N] [--full]`, `trail checkpoints [--include-consumed]`,
 * `trail checkpoint delete ID`, `trail search QUERY [--kind K]`, and the purge `trail gc` runs.
 *
 * A note that is not UTF-8, an `$EDITOR` that exits non-zero and a summarize command that fails
 * save nothing and exit 1 (`note-not-utf8`, `editor-failed`, `summarize-failed`).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as PlatformCommand from "@effect/platform/Command"
import {
  artifactText,
  type ArtifactsFile,
  type Bundle,
  bundlePaths,
  bundleTitle,
  Checkpoints,
  layer as checkpointsLayer,
  type Header,
  noteTitle,
  readHeader,
  Search,
  setSection
} from "@trail/checkpoints"
import {
  ArtifactKind,
  type Checkpoint,
  CheckpointTaken,
  type CheckpointConfig,
  type Worker,
  UsageError,
  WorkerId,
  WorkerNotFound
} from "@trail/domain"
import { Live } from "@trail/supervisor"
import { Database } from "@trail/store"
import { Inbox, Workers } from "@trail/workers"
import { Chunk, Effect, Layer, Option, Schema, Stream } from "effect"
import { bundleOf, gather, type WorkerFacts } from "./Checkpointing.js"
import { pretty, print } from "./Common.js"
import { emitError, emitWarning, ExitCode } from "./Output.js"
import { bold, card, dim, table, time, yellow } from "./Pretty.js"
import * as Stdin from "./Stdin.js"
import { Root, rootLayer } from "./WorkerCommands.js"

/** The Checkpoints service's settings from the root's: its path and `[checkpoint]`'s arming TTL. */
const checkpointsSettings = (settings: Live.RootSettings) => ({
  root: settings.project.root,
  armedTtlSecs: settings.config.checkpoint.armed_ttl_secs
})

/** Root + Checkpoints over the root's Database (show, list, delete, continue, search, gc). */
const CheckpointsLive = rootLayer((settings) =>
  checkpointsLayer(checkpointsSettings(settings)).pipe(
    Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile }))
  )
)

/** Root + Checkpoints + the Inbox and Workers (saving reads them; `continue --spawn` starts one). */
const CheckpointsWithFleet = rootLayer((settings) =>
  checkpointsLayer(checkpointsSettings(settings)).pipe(Layer.provideMerge(Live.inboxLayer(settings)))
)

const idArg = Args.text({ name: "id" }).pipe(
  Args.withDescription("A checkpoint id (cp-20261122-031500-3f2a), or last (the newest not consumed).")
)

const renderCheckpoints = (list: ReadonlyArray<Checkpoint>) =>
  list.length === 0
    ? dim("No checkpoints. `trail checkpoint -m NOTE` saves one.")
    : table(
        list.map((c) => ({
          id: c.id,
          state: c.state,
          title: c.title,
          artifacts: c.artifacts,
          created_at: c.created_at,
          once: c.once ? "once" : ""
        })),
        [
          ["id", "ID"],
          ["created_at", "SAVED"],
          ["state", "STATE"],
          ["artifacts", "ARTIFACTS"],
          ["once", "ONCE"],
          ["title", "TITLE"]
        ],
        (row, line) => (row.state === "consumed" ? dim(line) : line)
      )

const renderCheckpoint = (c: Checkpoint & { readonly file?: string }) =>
  card(`${c.id} · ${c.state}`, [
    ["title", c.title],
    ["saved", time(c.created_at)],
    ["artifacts", c.artifacts],
    ["session", c.session],
    ["workers", c.workers.length === 0 ? null : c.workers.join(", ")],
    ["once", c.once ? "yes (consumed at its first continue)" : null],
    ["file", c.file ?? null],
    ["next", `trail continue ${c.id}`]
  ])

// ---------------------------------------------------------------------------------------------
// trail checkpoint

/** The note from stdin when nothing else gives one: "" from a terminal, an error when not UTF-8. */
const noteFromStdin = Effect.map(Stdin.readUtf8, (read) =>
  Option.match(read, { onNone: () => ({ _tag: "Right" as const, right: "" }), onSome: (either) => either })
)

/** A program's exit status, its stdout, and its stderr's last line. */
const runProgram = (command: PlatformCommand.Command) =>
  Effect.scoped(
    Effect.gen(function* () {
      const executor = yield* CommandExecutor.CommandExecutor
      const process = yield* executor.start(command)
      const text = (stream: Stream.Stream<Uint8Array, PlatformError>) =>
        Stream.runCollect(Stream.decodeText(stream)).pipe(Effect.map((chunks) => Chunk.join(chunks, "")))
      const [stdout, stderr, status] = yield* Effect.all(
        [text(process.stdout), text(process.stderr), process.exitCode],
        {
          concurrency: 3
        }
      )
      return { status, stdout, stderr }
    })
  )

/** `$VISUAL`, else `$EDITOR`, else vi, on `file`, on this terminal; its exit status (-1: it could not start). */
const runEditor = (file: string) =>
  PlatformCommand.make("sh", "-c", 'exec ${VISUAL:-${EDITOR:-vi}} "$1"', "sh", file).pipe(
    PlatformCommand.stdin("inherit"),
    PlatformCommand.stdout("inherit"),
    PlatformCommand.stderr("inherit"),
    PlatformCommand.exitCode,
    Effect.map(Number),
    Effect.orElseSucceed(() => -1)
  )

/**
 * What `--summarize` pipes to `checkpoint.summarize_command`: the header, then every artifact in
 * full (the bundle, not a digest of it).
 */
const summaryInput = (header: string, artifacts: Bundle["artifacts"]) =>
  [
    header.trim(),
    "",
    "# Artifacts",
    "",
    ...artifacts.flatMap((a) => [`## ${a.id}: ${a.title}`, "", artifactText(a.fact), ""])
  ]
    .join("\n")
    .concat("\n")

/** The summarize command as a program: an argv list, or a shell string run by `sh -c`. */
const summarizeCommand = (
  template: NonNullable<CheckpointConfig["summarize_command"]>,
  input: string,
  root: string
) => {
  const [program, ...args] = typeof template === "string" ? ["sh", "-c", template] : template
  return PlatformCommand.make(program ?? "sh", ...args).pipe(
    PlatformCommand.workingDirectory(root),
    PlatformCommand.feed(input)
  )
}

/** Open inbox items a checkpoint records: the most stuck ones (a long-neglected inbox holds thousands). */
const CHECKPOINT_ITEMS = 100

/** The worker facts of `--worker ID`…: each worker's events and the last lines it printed. */
const workerFacts = (raw: ReadonlyArray<string>) =>
  Effect.forEach(raw, (id) =>
    Effect.gen(function* () {
      const workerId = yield* Schema.decode(WorkerId)(id).pipe(Effect.mapError(() => new WorkerNotFound({ id })))
      const detail = yield* Effect.flatMap(Workers.Workers, (workers) => workers.show(workerId))
      const facts: WorkerFacts = {
        id: workerId,
        events: detail.events,
        lastLines: detail.output.trimEnd().split("\n").slice(-5)
      }
      return facts
    })
  )

const checkpointSave = (args: {
  readonly message: Option.Option<string>
  readonly edit: boolean
  readonly session: Option.Option<string>
  readonly worker: ReadonlyArray<string>
  readonly once: boolean
  readonly summarize: boolean
  readonly pretty: boolean
}) =>
  Effect.gen(function* () {
    if (Option.isSome(args.message) && args.edit)
      return yield* new UsageError({ message: "-m and --edit exclude each other: give the note one way" })
    if (args.edit && process.stdin.isTTY !== true)
      return yield* new UsageError({
        message: "--edit needs a terminal (it opens $EDITOR); give the note with -m NOTE or on stdin"
      })
    const settings = yield* Root
    const template = settings.config.checkpoint.summarize_command
    if (args.summarize && template === undefined)
      return yield* new UsageError({
        message: "--summarize needs checkpoint.summarize_command in .trail.toml (the program the bundle is piped to)"
      })
    const note = Option.isSome(args.message)
      ? { _tag: "Right" as const, right: args.message.value }
      : args.edit
        ? { _tag: "Right" as const, right: "" }
        : yield* noteFromStdin
    if (note._tag === "Left")
      return yield* emitError(
        "note-not-utf8",
        `the note on stdin is not UTF-8 text (${note.left}); nothing was saved`,
        ExitCode.error
      )
    // Everything that can refuse is asked before the id is reserved.
    const workers = yield* workerFacts(args.worker)
    const items = yield* Effect.flatMap(Inbox.Inbox, (inbox) => inbox.items({ limit: CHECKPOINT_ITEMS }))
    const gathered = yield* gather({
      root: settings.project.root,
      config: settings.config.checkpoint,
      session: Option.getOrNull(args.session),
      workers,
      items
    })
    const checkpoints = yield* Checkpoints
    const fs = yield* FileSystem.FileSystem
    const id = yield* checkpoints.newId
    const file = bundlePaths(settings.project.root, id).header
    let bundle = yield* bundleOf(id, note.right, gathered)
    let title = bundleTitle(note.right, gathered.drafts)
    if (args.edit) {
      yield* fs.writeFileString(file, bundle.header).pipe(Effect.orDie)
      const status = yield* runEditor(file)
      if (status !== 0) {
        yield* checkpoints.release(id)
        return yield* emitError(
          "editor-failed",
          `the editor exited with status ${status}; nothing was saved`,
          ExitCode.error
        )
      }
      const edited = yield* fs.readFileString(file).pipe(Effect.orDie)
      const parts = readHeader(edited)
      bundle = { ...bundle, header: edited }
      title = noteTitle(parts.note) ?? parts.title ?? title
    }
    if (args.summarize && template !== undefined) {
      const ran = yield* runProgram(
        summarizeCommand(template, summaryInput(bundle.header, bundle.artifacts), settings.project.root)
      ).pipe(Effect.either)
      if (ran._tag === "Left" || ran.right.status !== 0 || ran.right.stdout.trim() === "") {
        yield* checkpoints.release(id)
        const why =
          ran._tag === "Left"
            ? ran.left.message
            : ran.right.status !== 0
              ? `exited with status ${ran.right.status}: ${ran.right.stderr.trim().split("\n").at(-1) ?? ""}`
              : "printed nothing"
        return yield* emitError(
          "summarize-failed",
          `checkpoint.summarize_command ${why}; nothing was saved`,
          ExitCode.error
        )
      }
      bundle = { ...bundle, header: setSection(bundle.header, "Summary", ran.right.stdout) }
    }
    const saved = yield* checkpoints
      .save({ bundle, once: args.once, session: gathered.session, workers: workers.map((w) => w.id), title })
      .pipe(Effect.tapError(() => checkpoints.release(id)))
    yield* print(
      { ...saved, file, problems: bundle.problems },
      { pretty: args.pretty, render: (c) => renderCheckpoint(c) }
    )
  })

// ---------------------------------------------------------------------------------------------
// show / delete

const renderHeader = (shown: { readonly header: string; readonly problems?: ReadonlyArray<string> }) =>
  [shown.header.trimEnd(), ...(shown.problems ?? []).map((p) => yellow(`! ${p}`))].join("\n")

const show = Command.make(
  "show",
  {
    id: idArg,
    artifact: Options.integer("artifact").pipe(
      Options.optional,
      Options.withDescription("Print artifact N (the number after @) in full instead of the header.")
    ),
    full: Options.boolean("full").pipe(Options.withDescription("Print the header and every artifact in full.")),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const checkpoints = yield* Checkpoints
      if (Option.isSome(args.artifact) && args.full)
        return yield* new UsageError({ message: "--artifact and --full exclude each other" })
      if (Option.isSome(args.artifact)) {
        const artifact = yield* checkpoints.artifact(args.id, args.artifact.value)
        const text = artifactText(artifact.fact)
        return yield* print(
          { ...artifact, text },
          { pretty: args.pretty, render: (a) => `${bold(`${a.id}  ${a.title}`)}\n\n${a.text}` }
        )
      }
      const shown: Header = yield* checkpoints.show(args.id)
      if (args.full) {
        const file: ArtifactsFile = yield* checkpoints.artifacts(args.id)
        return yield* print(
          { ...shown, problems: file.problems, artifacts: file.artifacts },
          {
            pretty: args.pretty,
            render: (s) =>
              [
                renderHeader(s),
                "",
                ...s.artifacts.flatMap((a) => [bold(`${a.id}  ${a.title}`), artifactText(a.fact), ""])
              ].join("\n")
          }
        )
      }
      const settings = yield* Root
      const fs = yield* FileSystem.FileSystem
      const artifacts = bundlePaths(settings.project.root, shown.checkpoint.id).artifacts
      const present = yield* fs.exists(artifacts).pipe(Effect.orElseSucceed(() => false))
      const problems = present
        ? []
        : [
            `${artifacts} was deleted: its ${shown.checkpoint.artifacts} artifact(s) cannot be shown in full; the header above is all that is left`
          ]
      yield* print({ ...shown, problems }, { pretty: args.pretty, render: renderHeader })
    })
).pipe(
  Command.provide(CheckpointsLive),
  Command.withDescription("Print a checkpoint's header as on disk (edits kept), or one artifact in full.")
)

/** Warns on stderr of checkpoint files that stayed after their removal was committed. */
const warnUnremoved = (unremoved: ReadonlyArray<string>) =>
  unremoved.length === 0
    ? Effect.void
    : emitWarning(
        "checkpoint-files-left",
        `the index and the log say removed, but these files could not be removed (remove them by hand): ${unremoved.join("; ")}`
      )

const remove = Command.make("delete", { id: idArg, pretty }, (args) =>
  Effect.gen(function* () {
    const { checkpoint, unremoved } = yield* Effect.flatMap(Checkpoints, (checkpoints) => checkpoints.delete(args.id))
    yield* warnUnremoved(unremoved)
    yield* print({ ...checkpoint, unremoved_files: unremoved }, { pretty: args.pretty, render: renderCheckpoint })
  })
).pipe(
  Command.provide(CheckpointsLive),
  Command.withDescription("Delete a checkpoint: its two files and its index entry (the log keeps that it was).")
)

const checkpoint = Command.make(
  "checkpoint",
  {
    message: Options.text("message").pipe(
      Options.withAlias("m"),
      Options.optional,
      Options.withDescription("The note: what you learned, decided, and what comes next (default: stdin).")
    ),
    edit: Options.boolean("edit").pipe(
      Options.withDescription("Write the note in $EDITOR on the pre-filled header (needs a terminal).")
    ),
    session: Options.text("session").pipe(
      Options.optional,
      Options.withDescription("The Claude Code session to read (default: the most recent one the hooks told of).")
    ),
    worker: Options.text("worker").pipe(
      Options.repeated,
      Options.withDescription("Add a worker's outcome, change set or failure (repeatable).")
    ),
    once: Options.boolean("once").pipe(
      Options.withDescription("Consume it at its first continue; `trail gc` purges it after the retention.")
    ),
    summarize: Options.boolean("summarize").pipe(
      Options.withDescription("Pipe the bundle to checkpoint.summarize_command; keep its output as ## Summary.")
    ),
    pretty
  },
  (args) => checkpointSave(args)
).pipe(
  Command.provide(CheckpointsWithFleet),
  Command.withDescription(
    "Save a checkpoint: the session's edits, failed commands, errors and answers, workers, open items, git, and your note."
  ),
  Command.withSubcommands([show, remove])
)

// ---------------------------------------------------------------------------------------------
// continue

/** The task of a worker that continues from a checkpoint: the header, then what to do with it. */
export const continuationTask = (shown: Header) =>
  `${shown.header.trimEnd()}\n\n---\n\nYou continue from checkpoint ${shown.checkpoint.id} above. Start with its ` +
  `## Next steps; \`trail checkpoint show ${shown.checkpoint.id} --artifact N\` prints an artifact in full.\n`

const spawnFrom = (ref: string, kind: string | undefined) =>
  Effect.gen(function* () {
    const checkpoints = yield* Checkpoints
    const shown = yield* checkpoints.show(ref)
    if (shown.checkpoint.state === "consumed")
      return yield* new CheckpointTaken({ id: shown.checkpoint.id, reason: "consumed", armed: null })
    const workers = yield* Workers.Workers
    const worker: Worker = yield* Effect.zipRight(
      workers.preflight(kind),
      workers.spawn({ text: continuationTask(shown), kind })
    )
    if (shown.checkpoint.once) yield* checkpoints.consume(shown.checkpoint.id)
    return { ...shown, worker }
  })

const continueCommand = Command.make(
  "continue",
  {
    id: Args.text({ name: "id" }).pipe(
      Args.withDefault("last"),
      Args.withDescription("A checkpoint id, or last (the newest not consumed).")
    ),
    spawn: Options.boolean("spawn").pipe(
      Options.withDescription("Start a worker with the header at the top of its task instead of arming it.")
    ),
    kind: Options.text("as").pipe(
      Options.optional,
      Options.withDescription("With --spawn: the worker's kind (default: default).")
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      if (Option.isSome(args.kind) && !args.spawn)
        return yield* new UsageError({ message: "--as goes with --spawn (the kind of the worker it starts)" })
      if (args.spawn) {
        const spawned = yield* spawnFrom(args.id, Option.getOrUndefined(args.kind))
        return yield* print(
          { ...spawned, armed: false },
          {
            pretty: args.pretty,
            render: (s) => `${s.header.trimEnd()}\n\n${dim(`${s.worker.id} started from ${s.checkpoint.id}`)}`
          }
        )
      }
      const armed = yield* Effect.flatMap(Checkpoints, (checkpoints) => checkpoints.arm(args.id))
      yield* print(
        { ...armed, armed: true },
        {
          pretty: args.pretty,
          render: (a) =>
            `${a.header.trimEnd()}\n\n${dim(`armed: the next Claude Code session started in this root gets ${a.checkpoint.id}`)}`
        }
      )
    })
).pipe(
  Command.provide(CheckpointsWithFleet),
  Command.withDescription(
    "Print a checkpoint's header and hand it to the next Claude Code session started here (once); --spawn starts a worker on it."
  )
)

// ---------------------------------------------------------------------------------------------
// checkpoints / search

const list = Command.make(
  "checkpoints",
  {
    includeConsumed: Options.boolean("include-consumed").pipe(
      Options.withDescription("Also list consumed --once checkpoints (until gc purges them).")
    ),
    pretty
  },
  (args) =>
    Effect.flatMap(
      Effect.flatMap(Checkpoints, (checkpoints) => checkpoints.list({ includeConsumed: args.includeConsumed })),
      (all) => print(all, { pretty: args.pretty, render: renderCheckpoints })
    )
).pipe(Command.provide(CheckpointsLive), Command.withDescription("List the saved checkpoints, newest first."))

/** Where a hit's full text is: `trail checkpoint show ID --artifact N`, or the worker's own record. */
const showCommand = (hit: Search.SearchHit) =>
  hit.checkpoint === null
    ? `trail worker show ${hit.artifact.split("@")[0] ?? ""}`
    : `trail checkpoint show ${hit.checkpoint} --artifact ${hit.artifact.split("@")[1] ?? ""}`

const renderHits = (hits: ReadonlyArray<Search.SearchHit>) =>
  hits.length === 0
    ? dim("Nothing found.")
    : hits
        .map(
          (h) =>
            `${bold(h.artifact)}  ${h.unresolved ? yellow("[unresolved] ") : ""}${h.title}\n  ${dim(h.snippet.replace(/\s*\n\s*/g, " · "))}\n  ${dim(showCommand(h))}`
        )
        .join("\n\n")

const search = Command.make(
  "search",
  {
    query: Args.text({ name: "query" }).pipe(
      Args.repeated,
      Args.withDescription("Words to find (every word must match).")
    ),
    kind: Options.text("kind").pipe(
      Options.optional,
      // ArtifactKind's literals spelt out (a test holds them equal): the help must not load @trail/domain.
      Options.withDescription(
        "Only artifacts of this kind: edit, command, error, answer, result, change_set, failure, review_item, coverage, git."
      )
    ),
    rebuild: Options.boolean("rebuild").pipe(
      Options.withDescription(
        "Rebuild the search index (and the checkpoint index) from the checkpoints' files and the event log, alone."
      )
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const checkpoints = yield* Checkpoints // migrated: the search tables exist
      if (args.rebuild) {
        if (args.query.length > 0 || Option.isSome(args.kind))
          return yield* new UsageError({ message: "--rebuild goes alone: rebuild, then search" })
        const rebuilt = yield* checkpoints.rebuildIndex
        return yield* print(rebuilt, {
          pretty: args.pretty,
          render: (r) =>
            `Rebuilt: ${r.checkpoints} checkpoint(s), ${r.artifacts} of their artifact(s), ${r.workers} worker artifact(s) from the log.` +
            (r.missing.length === 0 ? "" : `\n${yellow(`! artifacts file missing: ${r.missing.join(", ")}`)}`)
        })
      }
      if (args.query.length === 0) return yield* new UsageError({ message: "search needs QUERY: the words to find" })
      const kind = Option.getOrUndefined(args.kind)
      if (kind !== undefined && !Schema.is(ArtifactKind)(kind))
        return yield* new UsageError({
          message: `--kind: ${JSON.stringify(kind)} is not one of ${ArtifactKind.literals.join(", ")}`
        })
      const hits = yield* Search.search(args.query.join(" "), kind === undefined ? {} : { kind })
      yield* print(hits, { pretty: args.pretty, render: renderHits })
    })
).pipe(
  Command.provide(CheckpointsLive),
  Command.withDescription(
    "Search the artifacts of every checkpoint and every finished worker: unresolved failures first, then best match and newest."
  )
)

/**
 * `trail gc`'s part: the consumed checkpoints past `checkpoint.consumed_retention_days`, purged
 * (`purged_checkpoints`), and their files that could not be removed (`unremoved_checkpoint_files`,
 * also warned of on stderr).
 */
export const purgeCheckpoints = Effect.gen(function* () {
  const settings = yield* Root
  const checkpoints = yield* Checkpoints
  const { purged, unremoved } = yield* checkpoints.purge({
    retentionDays: settings.config.checkpoint.consumed_retention_days
  })
  yield* warnUnremoved(unremoved)
  return { purged_checkpoints: purged, unremoved_checkpoint_files: unremoved }
}).pipe(Effect.provide(CheckpointsLive))

export const checkpointCommands = [checkpoint, list, continueCommand, search] as const
