/**
 * `trail kinds` (every worker kind with its source, trust state and hash, and `.trail.toml`'s
 * `worker.command` with its own) and `trail kinds trust` (records the hash of project kinds and of
 * a project `worker.command` after a person reviewed them: the direnv model, so that a cloned
 * repository's `.trail/kinds/*.md` or `.trail.toml` never runs a command before its owner looked at it).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { ConfigError, UnknownKind } from "@trail/domain"
import { Kinds } from "@trail/workers"
import { Effect, Option } from "effect"
import { pretty, print } from "./Common.js"
import { bold, dim, green, red, table, yellow } from "./Pretty.js"
import { Root, RootLive } from "./WorkerCommands.js"

/** One row of `trail kinds`. `active`: it is the kind its name runs (not shadowed by a later source). */
interface KindRow {
  readonly name: string
  readonly origin: Kinds.LoadedKind["origin"]
  readonly source: string
  readonly trust: Kinds.KindTrust
  readonly overrides: boolean
  readonly active: boolean
  readonly hash: string
  readonly description: string
  readonly command: ReadonlyArray<string> | null
}

const loadAll = Effect.gen(function* () {
  const { project, config, userKindsDir: userDir } = yield* Root
  const loaded = yield* Kinds.loadKinds({
    userDir,
    projectDir: `${project.stateDir}/kinds`,
    command: { file: project.configFile, template: config.worker.command }
  })
  return { userDir, ...loaded }
})

const rowsOf = (loaded: Effect.Effect.Success<typeof loadAll>): Array<KindRow> =>
  loaded.loaded.map((entry) => ({
    name: entry.kind.name,
    origin: entry.origin,
    source: entry.kind.source,
    trust: entry.trust,
    overrides: entry.overrides,
    active: loaded.entries.get(entry.kind.name) === entry,
    hash: entry.kind.hash,
    description: entry.kind.description,
    command: Option.getOrNull(entry.kind.command)
  }))

const trustColour = (row: KindRow, text: string) =>
  Kinds.isRunnable(row.trust) ? (row.active ? text : dim(text)) : row.trust === "changed" ? red(text) : yellow(text)

const renderKinds = (result: {
  readonly kinds: ReadonlyArray<KindRow>
  readonly worker_command: Kinds.ProjectCommand
  readonly problems: ReadonlyArray<Kinds.KindProblem>
}) => {
  const command = result.worker_command
  const commandRunnable = Kinds.isRunnable(command.trust)
  const rows = result.kinds.map((row) => ({
    ...row,
    state: `${row.trust}${row.overrides ? ", overrides built-in" : ""}${row.active ? "" : ", shadowed"}`,
    short: row.hash === "" ? null : row.hash.slice(0, 12)
  }))
  const lines = [
    table(
      rows,
      [
        ["name", "KIND"],
        ["origin", "FROM"],
        ["state", "TRUST"],
        ["short", "SHA-256"],
        ["source", "FILE"]
      ],
      (row, text) => trustColour(row, text)
    )
  ]
  const commandLine = `${bold(Kinds.WORKER_COMMAND)} ${command.trust}${command.hash === "" ? "" : ` ${command.hash.slice(0, 12)}`} ${command.source}: ${command.command.join(" ")}`
  lines.push(
    "",
    commandRunnable ? commandLine : command.trust === "changed" ? red(commandLine) : yellow(commandLine),
    dim("(what every kind without a command of its own runs)")
  )
  if (rows.some((row) => !Kinds.isRunnable(row.trust)) || !commandRunnable)
    lines.push(
      "",
      `Review those files, then ${bold("trail kinds trust")} (or name the kinds, or ${Kinds.WORKER_COMMAND}) to let them run.`
    )
  for (const problem of result.problems)
    lines.push(red(`${problem.file}: ${problem.field === "" ? "" : `${problem.field}: `}${problem.message}`))
  if (rows.every((row) => Kinds.isRunnable(row.trust)) && commandRunnable && result.problems.length === 0)
    lines.push("", green("every kind may run"))
  return lines.join("\n")
}

const list = Command.make("kinds", { pretty }, (args) =>
  Effect.gen(function* () {
    const loaded = yield* loadAll
    yield* print(
      { kinds: rowsOf(loaded), worker_command: loaded.command, problems: loaded.problems },
      { pretty: args.pretty, render: renderKinds }
    )
  })
).pipe(Command.provide(RootLive))

const trust = Command.make(
  "trust",
  {
    names: Args.text({ name: "kind" }).pipe(
      Args.repeated,
      Args.withDescription(
        // (Kinds.WORKER_COMMAND spelt out: the workers library is loaded on first access, not for help.)
        "The kinds to trust, or worker.command for .trail.toml's (default: everything untrusted or changed)."
      )
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const loaded = yield* loadAll
      for (const name of args.names)
        if (!loaded.entries.has(name) && name !== Kinds.WORKER_COMMAND)
          return yield* new UnknownKind({ name, known: [...loaded.kinds.keys()].sort() })
      const trusted = yield* Kinds.trustKinds(loaded.userDir, loaded.loaded, args.names, loaded.command).pipe(
        Effect.mapError(
          (error) =>
            new ConfigError({
              file: Kinds.trustFileOf(loaded.userDir),
              key: "",
              value: "",
              reason: `cannot be written: ${error.message}`
            })
        )
      )
      yield* print(
        {
          trust_file: Kinds.trustFileOf(loaded.userDir),
          trusted
        },
        {
          pretty: args.pretty,
          render: (r) =>
            r.trusted.length === 0
              ? "nothing to trust: every kind may already run"
              : r.trusted.map((t) => `trusted ${bold(t.name)} ${dim(t.hash.slice(0, 12))} ${t.source}`).join("\n")
        }
      )
    })
).pipe(
  Command.provide(RootLive),
  Command.withDescription(
    "Record the SHA-256 of project kinds (and user kinds named like a built-in, and .trail.toml's worker.command) after you reviewed them; an edited one needs trusting again."
  )
)

export const kinds = list.pipe(
  Command.withDescription(
    "List worker kinds: built-in, user (~/.config/trail/kinds) and project (.trail/kinds), with trust state and hash, and .trail.toml's worker.command with its trust."
  ),
  Command.withSubcommands([trust])
)
