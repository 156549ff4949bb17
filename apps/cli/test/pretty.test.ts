import { describe, expect, it } from "vitest"
import stringWidth from "string-width"
import { FastCheck as fc } from "effect"
import { card, safeData, safeText, table, visibleWidth } from "../src/Pretty.js"

describe("safeText / safeData", () => {
  it("shows control characters and escape sequences instead of sending them; keeps newline and tab", () => {
    expect(safeText("a\u001b]0;T\u0007b\u001b[2Jc\rd\u007fe\u009bf\u202eg\n\th")).toBe(
      "a␛]0;T␇b␛[2Jc␍d␡e\\u009bf\\u202eg\n\th"
    )
    expect(safeText("plain ünïcødé 🙂")).toBe("plain ünïcødé 🙂")
  })

  it("maps every string of a value, keys included, keeping prototypes so getters still work", () => {
    class Row {
      constructor(readonly name: string) {}
      get shout() {
        return this.name.toUpperCase()
      }
    }
    const value = { rows: [new Row("x\u001b[2J")], "k\u0007": 3, none: null, when: new Date(0) }
    const safe = safeData(value)
    expect(safe.rows[0]).toBeInstanceOf(Row)
    expect(safe.rows[0]!.shout).toBe("X␛[2J")
    expect(Object.keys(safe)).toEqual(["rows", "k␇", "none", "when"])
    expect(safe.when).toBe(value.when)
    // The input is untouched (JSON output uses it as it is).
    expect(value.rows[0]!.name).toBe("x\u001b[2J")
  })
})

describe("table / card", () => {
  /** The terminal column where `marker` starts on each line that has it. */
  const columnsOf = (text: string, marker: string) =>
    text
      .split("\n")
      .filter((line) => line.includes(marker))
      .map((line) => stringWidth(line.slice(0, line.indexOf(marker))))

  it("lines up columns whose cells hold wide characters (日本語, emoji) and combining marks", () => {
    const rows = [
      { path: "src/日本語", status: "done" },
      { path: "docs/🙂🙂", status: "pending" },
      { path: "café", status: "leased" },
      { path: "a", status: "skipped" }
    ]
    const text = table(rows, [
      ["path", "PATH"],
      ["status", "STATUS"]
    ])
    const starts = text
      .split("\n")
      .map((line) => stringWidth(line.slice(0, line.search(/(STATUS|done|pending|leased|skipped)/))))
    expect(starts).toHaveLength(5)
    expect(new Set(starts)).toEqual(new Set([stringWidth("src/日本語") + 2]))
  })

  it("aligns a card's values after keys of any width", () => {
    const text = card("t", [
      ["日本語", "x1"],
      ["ab", "x2"]
    ])
    expect(new Set(columnsOf(text, "x"))).toEqual(new Set([2 + 6 + 2]))
  })

  it("counts the columns of any text as string-width does (printable ASCII without it)", () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) })
    const anyText = fc.string({ unit: "grapheme" })
    const coloured = fc.tuple(printable, printable).map(([a, b]) => `\u001b[1m${a}\u001b[22m${b}`)
    fc.assert(
      fc.property(fc.oneof(printable, anyText, coloured), (text) => {
        expect(visibleWidth(text)).toBe(stringWidth(text))
      }),
      { numRuns: 2_000 }
    )
  })
})
