import { describe, expect, it } from "vitest"
import { safeData, safeText } from "../src/Pretty.js"

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
