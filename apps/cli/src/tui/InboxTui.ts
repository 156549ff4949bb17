/**
 * `trail inbox --tui`: the interactive inbox, drawn with Ink (React for the terminal). The list is
 * a screenful of items in attention order (the `/` filter is a query, so it finds items beyond
 * the screen) with the selected item expanded as its card; it reloads whenever the store
 * changes (and every 2 s, which is all it has when the watch of the store stops). Keys: ↑↓ or j/k move · Enter the item's primary action · c reply (a one-line input) ·
 * y allow · Y allow always · n deny (a permission item) · Space dismiss · s skip · / filter ·
 * q or Esc quit.
 *
 * Built as its own ES module bundle (dist/tui.mjs: Ink needs top-level await) and loaded by the
 * CLI only for `--tui`; everything it does goes through the {@link TuiApi} the CLI hands it.
 */
import { Box, type Key, render, Text, useApp, useInput, useStdout } from "ink"
import { createElement as h, useCallback, useEffect, useRef, useState } from "react"

/** What the TUI needs of an item. */
export interface TuiItem {
  readonly id: string
  readonly headline: string
  readonly kind: string
  readonly actions: ReadonlyArray<string>
  readonly subject: { readonly type: string; readonly id: string }
}

/** What the TUI does through the CLI, on items of type `I` (the CLI's items, handed back as loaded). */
export interface TuiApi<I extends TuiItem = TuiItem> {
  /**
   * At most `limit` visible items whose headline, subject id or kind contains `filter` ("": all),
   * most stuck first, and how many such items there are in all.
   */
  readonly load: (
    filter: string,
    limit: number
  ) => Promise<{ readonly items: ReadonlyArray<I>; readonly total: number }>
  /** The card of an item (ANSI text), collapsed to one line when not selected. */
  readonly card: (item: I, selected: boolean) => string
  /** Runs an action on an item; resolves to a status line for the footer. */
  readonly act: (action: string, item: I, text?: string) => Promise<string>
  /**
   * Calls `onChange` whenever the store may have changed, and `onStop` (once, with why) if the
   * watch ends before the unsubscribe; returns the unsubscribe.
   */
  readonly watch: (onChange: () => void, onStop: (reason: string) => void) => () => void
}

/** How often the list is read again without a store change (skips cool down on the clock). */
const RELOAD_MS = 2_000

/** Items loaded for a terminal of `rows` lines: one line each, the selected card and the chrome take about 12. */
const pageSize = (rows: number | undefined) => Math.max(5, (rows ?? 24) - 12)

type Mode<I> = { readonly _tag: "browse" } | { readonly _tag: "reply"; readonly item: I } | { readonly _tag: "filter" }

const matches = (item: TuiItem, filter: string) => {
  const needle = filter.toLowerCase()
  return (
    needle === "" ||
    item.headline.toLowerCase().includes(needle) ||
    item.subject.id.toLowerCase().includes(needle) ||
    item.kind.includes(needle)
  )
}

const App = <I extends TuiItem>({ api }: { readonly api: TuiApi<I> }) => {
  const { exit } = useApp()
  const { stdout } = useStdout()
  // Keys can arrive faster than React renders (a paste, `tmux send-keys`): the input handler reads
  // and writes the editing state through refs, so each key sees what the previous one did.
  const [, redraw] = useState(0)
  const itemsRef = useRef<ReadonlyArray<I>>([])
  // How many items match the filter the last load was for (the list holds a screenful of them).
  const totalRef = useRef<{ readonly filter: string; readonly total: number }>({ filter: "", total: 0 })
  const loadsRef = useRef(0)
  const selectedRef = useRef<string | null>(null)
  const modeRef = useRef<Mode<I>>({ _tag: "browse" })
  const draftRef = useRef("")
  const filterRef = useRef("")
  const update = (change: () => void) => {
    change()
    redraw((n) => n + 1)
  }
  const mode = modeRef.current
  const draft = draftRef.current
  const filter = filterRef.current
  const setLoaded = (next: ReadonlyArray<I>, total: { readonly filter: string; readonly total: number }) =>
    update(() => {
      itemsRef.current = next
      totalRef.current = total
    })
  const setSelectedId = (next: string) => update(() => (selectedRef.current = next))
  const setMode = (next: Mode<I>) => update(() => (modeRef.current = next))
  const setDraft = (next: string) => update(() => (draftRef.current = next))
  const setFilter = (next: string) => {
    update(() => (filterRef.current = next))
    reload()
  }
  const [status, setStatus] = useState("")
  // Stays on screen (an action's status line would replace it): the list is slower to follow now.
  const [warning, setWarning] = useState("")

  const reload = useCallback(() => {
    // Only the newest load is shown: an older one (another filter) may resolve after it.
    const load = ++loadsRef.current
    const filter = filterRef.current
    api.load(filter, pageSize(stdout.rows)).then(
      ({ items, total }) => {
        if (load === loadsRef.current) setLoaded(items, { filter, total })
      },
      (error: unknown) => setStatus(`cannot read the inbox: ${String(error)}`)
    )
  }, [api, stdout])
  useEffect(() => {
    reload()
    // A watch that stops does not end the TUI: whoever is triaging at 2 a.m. keeps their place
    // and their draft, the timer below still follows the store (within RELOAD_MS instead of at
    // once), and the warning says why it is slower.
    const unwatch = api.watch(reload, (reason) =>
      setWarning(`live updates stopped (${reason}); redrawing every ${RELOAD_MS / 1000} s`)
    )
    // Skips cool down on the clock, not on a store change.
    const timer = setInterval(reload, RELOAD_MS)
    return () => {
      unwatch()
      clearInterval(timer)
    }
  }, [api, reload])

  /** The filtered items and the selection, as of now (not as of the last render). */
  const view = () => {
    const visible = itemsRef.current.filter((item) => matches(item, filterRef.current))
    const index = Math.max(
      0,
      visible.findIndex((item) => item.id === selectedRef.current)
    )
    return { visible, index, selected: visible[index] }
  }
  const { visible, index } = view()
  // Until the load for the filter being typed arrives, the count is what the screen holds.
  const total = totalRef.current.filter === filter ? totalRef.current.total : visible.length

  const run = (action: string, item: I, text?: string) => {
    setStatus(`${action}…`)
    api.act(action, item, text).then(
      (line) => {
        setStatus(line)
        reload()
      },
      (error: unknown) => setStatus(error instanceof Error ? error.message : String(error))
    )
  }

  const onKey = (input: string, key: Key): void => {
    // The one-line inputs (reply, filter) are edited here, by the same handler as the list, so
    // that no keystroke typed right after `c` or `/` can fall between two handlers.
    const mode = modeRef.current
    // Keys read in one chunk while browsing (a paste, a busy machine: "/zzz⏎") are pressed one by
    // one, so the first can open an input that takes the rest.
    if (mode._tag === "browse" && input.length > 1 && !key.ctrl && !key.meta) {
      for (const char of input) onKey(char === "\r" ? "" : char, { ...key, return: char === "\r" })
      return
    }
    if (mode._tag !== "browse") {
      const value = mode._tag === "reply" ? draftRef.current : filterRef.current
      const set = mode._tag === "reply" ? setDraft : setFilter
      if (key.escape) return setMode({ _tag: "browse" })
      // Text and Enter read in one chunk (a paste, a busy process) come as one input ending in
      // CR, not as a key: the text is typed, then Enter is pressed.
      if (!key.return && input.length > 1 && input.endsWith("\r")) set(value + input.slice(0, -1))
      if (key.return || (input.length > 1 && input.endsWith("\r"))) {
        setMode({ _tag: "browse" })
        if (mode._tag === "reply" && draftRef.current !== "") run("reply", mode.item, draftRef.current)
        return
      }
      if (key.backspace || key.delete) return set(value.slice(0, -1))
      if (input !== "" && !key.ctrl && !key.meta) set(value + input)
      return
    }
    if (input === "q" || key.escape) return exit()
    const { visible, index, selected } = view()
    if (key.downArrow || input === "j") {
      const next = visible[Math.min(visible.length - 1, index + 1)]
      if (next !== undefined) setSelectedId(next.id)
      return
    }
    if (key.upArrow || input === "k") {
      const previous = visible[Math.max(0, index - 1)]
      if (previous !== undefined) setSelectedId(previous.id)
      return
    }
    if (input === "/") {
      setMode({ _tag: "filter" })
      return
    }
    if (selected === undefined) return
    if (input === "c") {
      setDraft("")
      setMode({ _tag: "reply", item: selected })
    } else if (input === "y" && selected.actions.includes("allow")) run("allow", selected)
    else if (input === "Y" && selected.actions.includes("allow-always")) run("allow-always", selected)
    else if (input === "n" && selected.actions.includes("deny")) run("deny", selected)
    else if (input === " ") run("dismiss", selected)
    else if (input === "s") run("skip", selected)
    else if (key.return) {
      const primary = selected.actions[0]
      if (primary === "reply") {
        setDraft("")
        setMode({ _tag: "reply", item: selected })
      } else if (primary !== undefined) run(primary, selected)
    }
  }
  useInput(onKey)

  const rows = visible.map((item, i) =>
    h(Box, { key: item.id, marginBottom: i === index ? 1 : 0 }, h(Text, null, api.card(item, i === index)))
  )
  const footer =
    mode._tag === "reply"
      ? h(Text, null, h(Text, { color: "yellow" }, `reply to ${mode.item.subject.id} › `), `${draft}█`)
      : mode._tag === "filter"
        ? h(Text, null, h(Text, { color: "cyan" }, "filter › "), `${filter}█`)
        : h(
            Text,
            { dimColor: true },
            `${total} item(s)${filter === "" ? "" : ` matching "${filter}"`}${total > visible.length ? ` (${visible.length} shown)` : ""} · ↑↓/jk move · Enter act · c reply · Space dismiss · s skip · / filter · q quit`
          )
  return h(
    Box,
    { flexDirection: "column" },
    h(Text, { bold: true }, "trail inbox"),
    h(
      Box,
      { flexDirection: "column", marginTop: 1, marginBottom: 1 },
      ...(rows.length === 0 ? [h(Text, { key: "none", dimColor: true }, "Nothing needs you.")] : rows)
    ),
    warning === "" ? null : h(Text, { color: "yellow" }, warning),
    status === "" ? null : h(Text, { color: "green" }, status),
    footer
  )
}

/** Draws the inbox until the person quits. */
export const runTui = async <I extends TuiItem>(api: TuiApi<I>): Promise<void> => {
  const instance = render(h(App<I>, { api }), { exitOnCtrlC: true })
  await instance.waitUntilExit()
}
