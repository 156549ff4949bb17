/**
 * Glob and gitignore matching in time linear in the pattern times the path: no regular
 * expressions, so no pattern (from a cloned repository's `.gitignore` or `.trail.toml`) can make
 * the walk backtrack exponentially. `a*a*a*a*a*a*a*a*a*a*a*a*c` against a 60-character folder
 * name takes microseconds here; compiled to a backtracking regular expression (as gitignore
 * libraries do) it ran for minutes.
 *
 * Syntax (git's gitignore(5) "PATTERN FORMAT", which `.trail.toml` globs share):
 * - `*` any run of characters but `/`, `?` one character but `/`, `[a-z]` / `[!a-z]` / `[^a-z]`
 *   a class, `\x` the character x;
 * - a `**` segment matches any number of folders (`**\/x`, `a/**\/b`; a trailing `/**` matches
 *   what is inside, and with {@link GlobOptions.trailingGlobstarMatchesSelf} the folder itself);
 *   `**` inside a segment is a plain `*`;
 * - `.trail.toml` globs also expand braces (`{src,lib}/**`, nested).
 *
 * Matching is a two-pointer wildcard match with one backtrack point, at two levels (characters
 * within a segment, segments within a path): O(pattern × path) in the worst case.
 */

type Token =
  | { readonly _tag: "char"; readonly code: number }
  | { readonly _tag: "any" }
  | { readonly _tag: "star" }
  | {
      readonly _tag: "class"
      readonly negated: boolean
      readonly ranges: ReadonlyArray<readonly [number, number]>
    }

/**
 * One path segment of a pattern: `**`, a literal name (compared as a string), `*` then a literal
 * (`*.log`: the commonest gitignore rule, one `endsWith` per name, as `*` alone), or tokens.
 */
type Segment =
  | { readonly _tag: "globstar" }
  | { readonly _tag: "literal"; readonly text: string }
  | { readonly _tag: "suffix"; readonly text: string }
  | { readonly _tag: "tokens"; readonly tokens: ReadonlyArray<Token> }

const SLASH = 0x2f

/** The code point starting at `i` (callers index inside `text`; -1 past its end). */
const codeAt = (text: string, i: number): number => text.codePointAt(i) ?? -1

/** UTF-16 units a code point takes. */
const unitsOf = (code: number): number => (code > 0xffff ? 2 : 1)

/** Parses `[...]` starting at `start` (the `[`); null when it is not closed (then `[` is literal). */
const parseClass = (text: string, start: number): { readonly token: Token; readonly end: number } | null => {
  let i = start + 1
  let negated = false
  if (text[i] === "!" || text[i] === "^") {
    negated = true
    i++
  }
  const ranges: Array<readonly [number, number]> = []
  let first = true
  while (i < text.length) {
    if (text[i] === "]" && !first) return { token: { _tag: "class", negated, ranges }, end: i + 1 }
    first = false
    if (text[i] === "\\" && i + 1 < text.length) i++
    const low = codeAt(text, i)
    i += unitsOf(low)
    if (text[i] === "-" && i + 1 < text.length && text[i + 1] !== "]") {
      i += 1
      if (text[i] === "\\" && i + 1 < text.length) i++
      const high = codeAt(text, i)
      ranges.push([low, high])
      i += unitsOf(high)
    } else {
      ranges.push([low, low])
    }
  }
  return null
}

const tokenize = (text: string): ReadonlyArray<Token> => {
  const tokens: Array<Token> = []
  for (let i = 0; i < text.length;) {
    const c = text[i]
    if (c === "*") {
      // `**` inside a segment is a plain `*`; consecutive stars are one.
      if (tokens.at(-1)?._tag !== "star") tokens.push({ _tag: "star" })
      i++
    } else if (c === "?") {
      tokens.push({ _tag: "any" })
      i++
    } else if (c === "[") {
      const parsed = parseClass(text, i)
      if (parsed === null) {
        tokens.push({ _tag: "char", code: 0x5b })
        i++
      } else {
        tokens.push(parsed.token)
        i = parsed.end
      }
    } else {
      const escaped = c === "\\" && i + 1 < text.length
      const code = codeAt(text, escaped ? i + 1 : i)
      tokens.push({ _tag: "char", code })
      i += (escaped ? 1 : 0) + unitsOf(code)
    }
  }
  return tokens
}

const segmentOf = (text: string): Segment => {
  if (text === "**") return { _tag: "globstar" }
  const tokens = tokenize(text)
  const literal = (chars: ReadonlyArray<Token>) =>
    chars.map((t) => String.fromCodePoint(t._tag === "char" ? t.code : 0)).join("")
  if (tokens.every((t) => t._tag === "char")) return { _tag: "literal", text: literal(tokens) }
  const rest = tokens.slice(1)
  if (tokens[0]?._tag === "star" && rest.every((t) => t._tag === "char")) return { _tag: "suffix", text: literal(rest) }
  return { _tag: "tokens", tokens }
}

const tokenMatches = (token: Token, code: number): boolean => {
  switch (token._tag) {
    case "char":
      return token.code === code
    case "any":
      return code !== SLASH
    case "class": {
      let inside = false
      for (const [low, high] of token.ranges) {
        if (code >= low && code <= high) {
          inside = true
          break
        }
      }
      return inside !== token.negated && code !== SLASH
    }
    case "star":
      return false
  }
}

/**
 * Wildcard match of one name (which holds no `/`) against tokens, by code point: greedy,
 * backtracking only to the last star. `c` indexes UTF-16 units and steps a code point at a time
 * (no array of code points per call: this runs for every entry of the walk under a rule).
 */
const matchTokens = (tokens: ReadonlyArray<Token>, name: string): boolean => {
  let t = 0
  let c = 0
  let starT = -1
  let starC = 0
  while (c < name.length) {
    const code = codeAt(name, c)
    const token = tokens[t]
    if (token !== undefined && token._tag === "star") {
      starT = t++
      starC = c
    } else if (token !== undefined && tokenMatches(token, code)) {
      t++
      c += unitsOf(code)
    } else if (starT >= 0) {
      t = starT + 1
      starC += unitsOf(codeAt(name, starC))
      c = starC
    } else {
      return false
    }
  }
  while (tokens[t]?._tag === "star") t++
  return t === tokens.length
}

const matchSegment = (segment: Segment, name: string): boolean => {
  switch (segment._tag) {
    case "literal":
      return segment.text === name
    case "suffix":
      return name.endsWith(segment.text)
    case "tokens":
      return matchTokens(segment.tokens, name)
    case "globstar":
      return false
  }
}

/** Match of path segments against pattern segments, where `**` takes any number of segments. */
const matchSegments = (pattern: ReadonlyArray<Segment>, names: ReadonlyArray<string>): boolean => {
  let p = 0
  let n = 0
  let starP = -1
  let starN = 0
  for (let name = names[n]; name !== undefined; name = names[n]) {
    const segment = pattern[p]
    if (segment !== undefined && segment._tag === "globstar") {
      starP = p++
      starN = n
    } else if (segment !== undefined && matchSegment(segment, name)) {
      p++
      n++
    } else if (starP >= 0) {
      p = starP + 1
      n = ++starN
    } else {
      return false
    }
  }
  while (pattern[p]?._tag === "globstar") p++
  return p === pattern.length
}

/** A segment matching any one name (what git's trailing `/**` needs at least once). */
const ANY_NAME: Segment = { _tag: "tokens", tokens: [{ _tag: "star" }] }

export interface GlobOptions {
  /** `a/**` also matches `a` itself (picomatch's and `.trail.toml`'s reading; git's is false). */
  readonly trailingGlobstarMatchesSelf: boolean
}

/** A compiled glob over `/`-separated relative paths (the whole path must match). */
export interface Glob {
  readonly source: string
  readonly matches: (path: string) => boolean
}

const compileOne = (pattern: string, options: GlobOptions): ((names: ReadonlyArray<string>) => boolean) => {
  const compiled = pattern
    .split("/")
    .filter((s) => s !== "")
    .map(segmentOf)
  if (compiled.length > 1 && compiled.at(-1)?._tag === "globstar" && !options.trailingGlobstarMatchesSelf) {
    compiled.splice(compiled.length - 1, 0, ANY_NAME)
  }
  return (names) => matchSegments(compiled, names)
}

/** Expands `{a,b}` alternatives (nested too; `\{` is literal; an unclosed `{` is literal). */
export const expandBraces = (pattern: string): ReadonlyArray<string> => {
  let depth = 0
  let open = -1
  const commas: Array<number> = []
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === "\\") {
      i++
    } else if (c === "{") {
      if (depth++ === 0) open = i
    } else if (c === "," && depth === 1) {
      commas.push(i)
    } else if (c === "}" && depth > 0 && --depth === 0) {
      if (commas.length === 0) {
        // `{x}` is literal text; expand what follows.
        return expandBraces(pattern.slice(i + 1)).map((rest) => pattern.slice(0, i + 1) + rest)
      }
      const head = pattern.slice(0, open)
      const tails = expandBraces(pattern.slice(i + 1))
      const out: Array<string> = []
      let from = open
      for (const to of [...commas, i]) {
        for (const alt of expandBraces(pattern.slice(from + 1, to))) {
          for (const tail of tails) out.push(head + alt + tail)
        }
        from = to
      }
      return out
    }
  }
  return [pattern]
}

/**
 * Compiles `.trail.toml` globs (`scan.include` / `scan.exclude`): braces expanded, `**` as above,
 * a trailing `/**` also matching the folder itself. The whole relative path must match.
 */
export const compileGlobs = (patterns: ReadonlyArray<string>): Glob | null => {
  if (patterns.length === 0) return null
  const matchers = patterns.flatMap((p) =>
    expandBraces(p).map((expanded) => compileOne(expanded, { trailingGlobstarMatchesSelf: true }))
  )
  return {
    source: patterns.join(", "),
    matches: (path) => {
      const names = path.split("/")
      return matchers.some((m) => m(names))
    }
  }
}

/** One rule of a gitignore file. */
interface Rule {
  readonly negated: boolean
  readonly directoryOnly: boolean
  /**
   * Set for a rule without a `/` but at its end: it matches a name at any depth (here: the last
   * segment); null for a rule matched against the whole path.
   */
  readonly name: Segment | null
  readonly path: (names: ReadonlyArray<string>) => boolean
  /**
   * The number of segments every path the rule matches has (a path rule without `**`), or null:
   * paths of another depth are passed over without splitting them.
   */
  readonly depth: number | null
}

/** Parses one line of a gitignore file (gitignore(5)); null for blank lines and comments. */
const parseRule = (raw: string): Rule | null => {
  let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
  if (line === "" || line.startsWith("#")) return null
  // Trailing spaces are dropped unless escaped with a backslash.
  let end = line.length
  while (end > 0 && line[end - 1] === " " && line[end - 2] !== "\\") end--
  line = line.slice(0, end)
  let negated = false
  if (line.startsWith("!")) {
    negated = true
    line = line.slice(1)
  }
  let directoryOnly = false
  while (line.endsWith("/")) {
    directoryOnly = true
    line = line.slice(0, -1)
  }
  if (line === "") return null
  const anyDepth = !line.includes("/")
  if (line.startsWith("/")) line = line.slice(1)
  const name = anyDepth ? segmentOf(line) : null
  const segments = line.split("/").filter((segment) => segment !== "")
  return {
    negated,
    directoryOnly,
    name: name !== null && name._tag === "globstar" ? ANY_NAME : name,
    path: anyDepth ? () => false : compileOne(line, { trailingGlobstarMatchesSelf: false }),
    depth: anyDepth || segments.includes("**") ? null : segments.length
  }
}

/** Segments of a `/`-separated path, counted without splitting it. */
const depthOf = (path: string): number => {
  let depth = 1
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) depth++
  return depth
}

/** The rules of one gitignore file (or several files of one folder, in order). */
export interface IgnoreRules {
  /**
   * The verdict of the last rule that matches `path` (relative to the file's folder): "ignored",
   * "unignored" (a `!` rule), or null when no rule matches. Parent folders are not consulted:
   * the walk never enters an ignored folder.
   */
  readonly test: (path: string, isDirectory: boolean) => "ignored" | "unignored" | null
}

/** Compiles gitignore text (gitignore(5) syntax, case-sensitive as git on Linux). */
export const compileIgnore = (texts: ReadonlyArray<string>): IgnoreRules => {
  const rules: Array<Rule> = []
  for (const text of texts) {
    for (const line of text.split("\n")) {
      const rule = parseRule(line)
      if (rule !== null) rules.push(rule)
    }
  }
  const lastFirst = rules.reverse()
  return {
    test: (path, isDirectory) => {
      let names: ReadonlyArray<string> | null = null
      let depth = -1
      const slash = path.lastIndexOf("/")
      const base = slash < 0 ? path : path.slice(slash + 1)
      for (const rule of lastFirst) {
        if (rule.directoryOnly && !isDirectory) continue
        let hit: boolean
        if (rule.name !== null) hit = matchSegment(rule.name, base)
        else {
          if (depth < 0) depth = depthOf(path)
          if (rule.depth !== null && rule.depth !== depth) continue
          names ??= path.split("/")
          hit = rule.path(names)
        }
        if (hit) return rule.negated ? "unignored" : "ignored"
      }
      return null
    }
  }
}
