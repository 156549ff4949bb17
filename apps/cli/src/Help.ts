/**
 * Help that reads like gh or git, and usage errors that say what to type instead. @effect/cli
 * builds a HelpDoc for every command; this module lays it out itself: each option on one line
 * with its description in our words and its default, wrapped to the terminal width; the
 * library's generic sentences ("A user-defined piece of text.", "This setting is optional.") are
 * dropped. Before argv is parsed, {@link preflight} answers `--help`, bare `trail` (help, exit 2),
 * an unknown command (did-you-mean, exit 2) and a bad value of a choice or integer flag (an error
 * naming the flag and what it accepts, exit 2).
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import * as Usage from "@effect/cli/Usage"
import { HashSet } from "effect"
import { bold, dim, termWidth, wrap } from "./Pretty.js"

type Node = Descriptor.Command<unknown>

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
  }
}

/** The paragraphs, headers and description lists of a HelpDoc, in order. */
type Block =
  | { readonly _tag: "Header"; readonly text: string }
  | { readonly _tag: "Paragraph"; readonly text: string }
  | { readonly _tag: "DescriptionList"; readonly definitions: ReadonlyArray<readonly [string, ReadonlyArray<string>]> }

const blocksOf = (doc: HelpDoc.HelpDoc): Array<Block> => {
  switch (doc._tag) {
    case "Empty":
      return []
    case "Header":
      return [{ _tag: "Header", text: spanText(doc.value) }]
    case "Paragraph":
      return [{ _tag: "Paragraph", text: spanText(doc.value) }]
    case "Enumeration":
      return doc.elements.flatMap(blocksOf)
    case "Sequence":
      return [...blocksOf(doc.left), ...blocksOf(doc.right)]
    case "DescriptionList":
      return [
        {
          _tag: "DescriptionList",
          definitions: doc.definitions.map(
            ([term, body]) =>
              [spanText(term), blocksOf(body).flatMap((b) => (b._tag === "Paragraph" ? [b.text] : []))] as const
          )
        }
      ]
  }
}

/** The library's own sentences, which say nothing about trail. */
const BOILERPLATE = [
  /^A user-defined piece of text( that is confidential)?\.$/,
  /^A true or false value\.$/,
  /^An integer\.$/,
  /^A floating point number\.$/,
  /^One of the following: /,
  /^This setting is optional\.$/,
  /^This option may be repeated zero or more times\.$/
]

/** Value names that say more than the flag's own name. */
const VALUE_NAMES: Record<string, string> = {
  "--as": "KIND",
  "--root": "DIR",
  "--since": "ID|DATE",
  "--archive-before": "DATE",
  "--message": "NOTE",
  "--session": "ID",
  "--worker": "ID",
  "--kind": "KIND"
}

/** One flag or argument as help shows it. */
interface Entry {
  readonly term: string
  readonly description: string
  /** The flag (`--strategy`), or null for a positional argument. */
  readonly flag: string | null
  /** Its short names (`-m`). */
  readonly aliases: ReadonlyArray<string>
  /** The accepted values of a choice flag. */
  readonly choices: ReadonlyArray<string> | null
  readonly integer: boolean
  readonly takesValue: boolean
}

const entryOf = ([rawTerm, paragraphs]: readonly [string, ReadonlyArray<string>]): Entry => {
  // A flag with an alias reads `(-m, --message) text`.
  // A flag with an alias reads `(-m text, --message text)`.
  const aliased = /^\((.*)\)$/.exec(rawTerm.trim())
  const spelled = (aliased === null ? [rawTerm.trim()] : (aliased[1] ?? "").split(", ")).map((n) => n.trim().split(" "))
  const long = spelled.find(([n]) => n?.startsWith("--") === true) ?? spelled[0] ?? []
  const [name = "", ...rest] = long
  const aliases = spelled.map(([n]) => n ?? "").filter((n) => n !== name)
  const placeholder = rest.join(" ").trim()
  const flag = name.startsWith("-") ? name : null
  const choices = placeholder.includes(" | ") ? placeholder.split(" | ").map((c) => c.trim()) : null
  const integer = placeholder === "integer"
  let fallback: string | null = null
  let repeatable = false
  const words: Array<string> = []
  for (const paragraph of paragraphs) {
    const withDefault = /^This setting is optional\. Defaults to: (.*)$/.exec(paragraph)
    if (withDefault !== null) {
      fallback = withDefault[1] ?? ""
      continue
    }
    if (/may be repeated|must be repeated/.test(paragraph)) repeatable = true
    if (BOILERPLATE.some((pattern) => pattern.test(paragraph)) || /repeated/.test(paragraph)) continue
    words.push(paragraph)
  }
  const value =
    flag === null
      ? name.toUpperCase()
      : choices !== null
        ? choices.join("|")
        : placeholder === ""
          ? ""
          : placeholder === "integer"
            ? "N"
            : (VALUE_NAMES[flag] ?? flag.replace(/^-+/, "").replace(/-/g, "_").toUpperCase())
  let description = words.join(" ")
  // A boolean flag defaults to off, which needs no saying; any other default is shown unless the
  // description already tells it.
  if (fallback !== null && fallback !== "false" && !/\bdefault\b/i.test(description))
    description = `${description} (default: ${fallback})`.trim()
  if (repeatable && !/repeatable/i.test(description)) description = `${description} (repeatable)`.trim()
  const shown = [...aliases, flag].join(", ")
  return {
    term: flag === null ? value : value === "" ? shown : `${shown} ${value}`,
    description,
    flag,
    aliases,
    choices,
    integer,
    takesValue: flag !== null && placeholder !== ""
  }
}

const sectionEntries = (blocks: ReadonlyArray<Block>, header: string): Array<Entry> => {
  const at = blocks.findIndex((b) => b._tag === "Header" && b.text === header)
  if (at < 0) return []
  const entries: Array<Entry> = []
  for (const block of blocks.slice(at + 1)) {
    if (block._tag === "Header") break
    if (block._tag === "DescriptionList") entries.push(...block.definitions.map(entryOf))
  }
  return entries
}

const config = CliConfig.make({ showBuiltIns: false })

/**
 * The command itself, without its subcommands. A group's HelpDoc is its own (description,
 * arguments, options) followed by a COMMANDS section that renders the usage of every command
 * under it, which costs most of a `trail` start if done for the root; the sections read here
 * are all in the first part.
 */
const ownCommand = (node: Node): Node => {
  let current: unknown = node
  for (;;) {
    if (isTagged(current, "Map") && "command" in current) current = current.command
    else if (isTagged(current, "Subcommands") && "parent" in current) current = current.parent
    else return isNode(current) ? current : node
  }
}

const descriptionOf = (node: Node): string => {
  const blocks = blocksOf(Descriptor.getHelp(ownCommand(node), config))
  const at = blocks.findIndex((b) => b._tag === "Header" && b.text === "DESCRIPTION")
  const paragraph = at < 0 ? undefined : blocks[at + 1]
  return paragraph?._tag === "Paragraph" ? paragraph.text : ""
}

/**
 * A group's commands, in the order they were defined. The public getSubcommands flattens nested
 * groups (it answers `sweep` with the bare `sweep` command, without `new` and `show`), so the
 * descriptor's own `Subcommands` node is read, each field checked at run time.
 */
const subcommandsOf = (node: Node): Array<readonly [string, Node]> => {
  let current: unknown = node
  while (isTagged(current, "Map") && "command" in current) current = current.command
  if (!isTagged(current, "Subcommands") || !("children" in current) || !Array.isArray(current.children)) return []
  return current.children.flatMap((child: unknown) => {
    if (!isNode(child)) return []
    const [name] = HashSet.values(Descriptor.getNames(child))
    return name === undefined ? [] : [[name, child] as const]
  })
}

const isNode = (value: unknown): value is Node =>
  typeof value === "object" && value !== null && Descriptor.TypeId in value

const isTagged = <T extends string>(value: unknown, tag: T): value is { readonly _tag: T } =>
  typeof value === "object" && value !== null && "_tag" in value && value._tag === tag

/** A command's flags and arguments as help shows them (computed once per command). */
const optionsOf = (node: Node): { readonly options: ReadonlyArray<Entry>; readonly args: ReadonlyArray<Entry> } => {
  const known = optionsCache.get(node)
  if (known !== undefined) return known
  const blocks = blocksOf(Descriptor.getHelp(ownCommand(node), config))
  const found = { options: sectionEntries(blocks, "OPTIONS"), args: sectionEntries(blocks, "ARGUMENTS") }
  optionsCache.set(node, found)
  return found
}
const optionsCache = new WeakMap<
  Node,
  { readonly options: ReadonlyArray<Entry>; readonly args: ReadonlyArray<Entry> }
>()

/** `term  description` rows, the description column wrapped; a long term puts it on the next line. */
const rows = (entries: ReadonlyArray<{ term: string; description: string }>, width: number): Array<string> => {
  const column = Math.min(28, Math.max(...entries.map((e) => e.term.length))) + 4
  return entries.flatMap(({ term, description }) => {
    const lines = wrap(description, Math.max(20, width - column))
    const pad = " ".repeat(column)
    if (term.length + 4 > column) return [`  ${term}`, ...lines.map((l) => `${pad}${l}`)]
    return lines.map((l, i) => (i === 0 ? `  ${term.padEnd(column - 2)}${l}` : `${pad}${l}`))
  })
}

const paragraph = (text: string, width: number, indent = "  ") =>
  wrap(text, width - indent.length).map((l) => indent + l)

/** Follows `path` (command names) from the root; null when a name is not a subcommand. */
const nodeAt = (root: Node, path: ReadonlyArray<string>): Node | null => {
  let node: Node = root
  for (const name of path) {
    const next = subcommandsOf(node).find(([n]) => n === name)
    if (next === undefined) return null
    node = next[1]
  }
  return node
}

/** The help page of the command at `path` (names after `trail`), laid out for `width` columns. */
export const render = (root: Node, path: ReadonlyArray<string>, width = termWidth()): string => {
  const node = nodeAt(root, path) ?? root
  const name = ["trail", ...path].join(" ")
  const children = subcommandsOf(node)
  const { options, args } = optionsOf(node)
  const out: Array<string> = []
  out.push(...paragraph(descriptionOf(node), width, ""), "")
  out.push(bold("USAGE"))
  if (children.length > 0) {
    out.push(`  ${name}${options.length > 0 ? " [flags]" : ""} <command> [flags]`)
  } else {
    const usage = spanText(
      // The library's usage line, minus its own name (we print the full path).
      (() => {
        const doc = Usage.getHelp(Descriptor.getUsage(node))
        return doc._tag === "Paragraph" ? doc.value : { _tag: "Text", value: "" }
      })()
    ).replace(/^\S+\s*/, "")
    // The library writes `--task text`; the usage line names each value as the FLAGS section does.
    const shown = options.reduce((line, o) => {
      if (o.flag === null || !o.takesValue) return line
      const placeholder = o.choices !== null ? o.choices.join(" | ") : o.integer ? "integer" : "text"
      return line.split(`${o.flag} ${placeholder}`).join(o.term)
    }, usage)
    const words = [name, ...shown.split(" ").filter((w) => w !== "")]
    out.push(...wrap(words.join(" "), width - 4).map((l, i) => (i === 0 ? `  ${l}` : `      ${l}`)))
  }
  if (children.length > 0) {
    out.push("", bold("COMMANDS"))
    out.push(
      ...rows(
        children.map(([child, n]) => ({ term: child, description: descriptionOf(n) })),
        width
      )
    )
  }
  if (args.length > 0) out.push("", bold("ARGUMENTS"), ...rows(args, width))
  if (options.length > 0) out.push("", bold(path.length === 0 ? "GLOBAL FLAGS" : "FLAGS"), ...rows(options, width))
  if (path.length > 0 && children.length === 0)
    out.push(
      "",
      bold("INHERITED FLAGS"),
      ...rows(
        [
          { term: "--help", description: "Show help for this command." },
          ...(options.some((o) => o.flag === "--pretty")
            ? []
            : [{ term: "--pretty", description: "Render the result for a person instead of JSON." }]),
          {
            term: "--root DIR",
            description:
              "Before the command: the root (default: $TRAIL_ROOT, else the nearest folder above the cwd holding .trail/)."
          }
        ],
        width
      )
    )
  out.push("")
  const footer =
    children.length > 0
      ? `Run '${name} <command> --help' for a command's flags. Every command prints one JSON value on stdout (--pretty: for a person) and errors as JSON on stderr.`
      : "Exit codes: 0 ok · 1 error · 2 usage · 3 sweep complete · 4 none available."
  out.push(...paragraph(footer, width, "").map(dim))
  return out.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Before parsing

/** Levenshtein distance (insertions, deletions, substitutions and adjacent swaps cost 1). */
const distance = (a: string, b: string): number => {
  // The table d(i, j) (distance of a's first i and b's first j characters), row after row.
  const width = b.length + 1
  const d: Array<number> = Array.from({ length: (a.length + 1) * width }, (_, k) => {
    const [i, j] = [Math.floor(k / width), k % width]
    return i === 0 ? j : j === 0 ? i : 0
  })
  const at = (i: number, j: number) => d[i * width + j] ?? 0
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i * width + j] = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i * width + j] = Math.min(at(i, j), at(i - 2, j - 2) + 1)
    }
  return at(a.length, b.length)
}

/** Commands close to `typed`: within 2 edits, or starting with it. */
export const suggestions = (typed: string, names: ReadonlyArray<string>): Array<string> =>
  names
    .map((name) => ({ name, d: name.startsWith(typed) && typed.length >= 2 ? 0.5 : distance(typed, name) }))
    .filter((c) => c.d <= 2)
    .sort((x, y) => x.d - y.d || (x.name < y.name ? -1 : 1))
    .map((c) => c.name)

/** What to do before the parser sees argv. */
export type Preflight =
  | { readonly _tag: "Parse" }
  | { readonly _tag: "Help"; readonly text: string; readonly exit: 0 | 2 }
  | { readonly _tag: "Usage"; readonly message: string }

/**
 * Decides from `argv` (the words after `trail`) whether to print help, report a usage error the
 * parser would word poorly, or parse. Global flags (`--root DIR`, `--pretty`) may come first.
 */
export const preflight = (root: Node, argv: ReadonlyArray<string>): Preflight => {
  const end = argv.indexOf("--")
  const words = end < 0 ? argv : argv.slice(0, end)
  const path: Array<string> = []
  let node = root
  let i = 0
  // The command path: names of subcommands, skipping the root's flags.
  for (; i < words.length; i++) {
    const word = words[i]
    if (word === undefined) break
    if (word === "--root") {
      i++
      continue
    }
    if (word.startsWith("-")) {
      // A flag of a group that takes a value (`trail checkpoint -m NOTE`): the value is not a command name.
      const own = subcommandsOf(node).length > 0 ? optionsOf(node).options : []
      if (!word.includes("=") && own.some((o) => o.takesValue && (o.flag === word || o.aliases.includes(word)))) i++
      continue
    }
    const children = subcommandsOf(node)
    if (children.length === 0) break
    const next = children.find(([name]) => name === word)
    if (next === undefined) {
      if (words.includes("--help") || words.includes("-h")) break
      const near = suggestions(
        word,
        children.map(([name]) => name)
      )
      const where = ["trail", ...path].join(" ")
      return {
        _tag: "Usage",
        message:
          `unknown command ${JSON.stringify(word)} for ${JSON.stringify(where)}` +
          (near.length > 0
            ? `; did you mean ${near.slice(0, 3).join(" or ")}?`
            : `; run '${where} --help' for the commands`)
      }
    }
    path.push(word)
    node = next[1]
  }
  if (words.includes("--help") || words.includes("-h")) return { _tag: "Help", text: render(root, path), exit: 0 }
  // A command group without its command (bare `trail`, `trail worker`): its help, as a usage error.
  // (A group with flags of its own, like `trail inbox`, is a command in its own right.)
  const own = optionsOf(node)
  // Flags of the root other than --root/--pretty (--version, …) are the library's to answer.
  const builtIn = words.some(
    (w, k) => w.startsWith("-") && w !== "--pretty" && w !== "--root" && words[k - 1] !== "--root"
  )
  if (
    subcommandsOf(node).length > 0 &&
    !builtIn &&
    (path.length === 0 || (own.options.length === 0 && own.args.length === 0))
  )
    return { _tag: "Help", text: render(root, path), exit: 2 }
  // Values of choice and integer flags, checked here so that the error names the flag.
  const { options } = own
  for (let j = i; j < words.length; j++) {
    const word = words[j]
    if (word === undefined) break
    if (!word.startsWith("--")) continue
    const eq = word.indexOf("=")
    const flag = eq < 0 ? word : word.slice(0, eq)
    const entry = options.find((o) => o.flag === flag)
    if (entry === undefined || !entry.takesValue) continue
    const value = eq < 0 ? words[j + 1] : word.slice(eq + 1)
    if (eq < 0) j++
    // `done --found` at the end: the library would call --found an unknown argument.
    if (value === undefined)
      return {
        _tag: "Usage",
        message: `${flag}: expected ${entry.integer ? "a whole number" : "a value"}, got nothing`
      }
    if (entry.choices !== null && !entry.choices.includes(value)) {
      const near = suggestions(value, entry.choices)
      return {
        _tag: "Usage",
        message: `${flag}: ${JSON.stringify(value)} is not one of ${entry.choices.join(", ")}${near.length > 0 ? `; did you mean ${near[0]}?` : ""}`
      }
    }
    if (entry.integer && !/^-?\d+$/.test(value))
      return { _tag: "Usage", message: `${flag}: expected a whole number, got ${JSON.stringify(value)}` }
  }
  return { _tag: "Parse" }
}
