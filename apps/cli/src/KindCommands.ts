/**
 * `trail kinds` (every worker kind with its source, trust state and hash) and `trail kinds trust`
 * (records the hash of project kinds after a person reviewed them: the direnv model, so that a
 * cloned repository's `.trail/kinds/*.md` never runs before its owner looked at it).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { ConfigError, UnknownKind } from "@trail/domain"
import { Project } from "@trail/scheduler"
import { Kinds } from "@trail/workers"
import { Effect, Option } from "effect"
import { explicitRoot, pretty, print } from "./Common.js"
import { bold, dim, green, red, table, yellow } from "./Pretty.js"
import { userKindsDir } from "./WorkerCommands.js"

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
  const project = yield* Project.findRoot({ explicit: yield* explicitRoot, cwd: process.cwd() })
  const userDir = userKindsDir()
  const loaded = yield* Kinds.loadKinds({ userDir, projectDir: `${project.stateDir}/kinds` })
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
  readonly problems: ReadonlyArray<Kinds.KindProblem>
}) => {
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
  if (rows.some((row) => !Kinds.isRunnable(row.trust)))
    lines.push("", `Review those files, then ${bold("trail kinds trust")} (or name the kinds) to let them run.`)
  for (const problem of result.problems)
    lines.push(red(`${problem.file}: ${problem.field === "" ? "" : `${problem.field}: `}${problem.message}`))
  if (rows.every((row) => Kinds.isRunnable(row.trust)) && result.problems.length === 0)
    lines.push("", green("every kind may run"))
  return lines.join("\n")
}

const list = Command.make("kinds", { pretty }, (args) =>
  Effect.gen(function* () {
    const loaded = yield* loadAll
    yield* print({ kinds: rowsOf(loaded), problems: loaded.problems }, { pretty: args.pretty, render: renderKinds })
  })
)

const trust = Command.make(
  "trust",
  {
    names: Args.text({ name: "kind" }).pipe(
      Args.repeated,
      Args.withDescription("The kinds to trust (default: every untrusted or changed kind).")
    ),
    pretty
  },
  (args) =>
    Effect.gen(function* () {
      const loaded = yield* loadAll
      for (const name of args.names)
        if (!loaded.entries.has(name)) return yield* new UnknownKind({ name, known: [...loaded.kinds.keys()].sort() })
      const trusted = yield* Kinds.trustKinds(loaded.userDir, loaded.loaded, args.names).pipe(
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
          trusted: trusted.map((entry) => ({ name: entry.kind.name, source: entry.kind.source, hash: entry.kind.hash }))
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
  Command.withDescription(
    "Record the SHA-256 of project kinds (and user kinds named like a built-in) after you reviewed them; an edited file needs trusting again."
  )
)

export const kinds = list.pipe(
  Command.withDescription(
    "List worker kinds: built-in, user (~/.config/trail/kinds) and project (.trail/kinds), with trust state and hash."
  ),
  Command.withSubcommands([trust])
)
