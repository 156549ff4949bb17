import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import {
  decayOutcome,
  hashUnit,
  normalise,
  recency,
  scoreFolders,
  TIE_BREAK_EPSILON,
  weightedScore,
  type FolderSignal,
  type SweepScoring
} from "../src/Scoring.js"

const unit = fc.double({ min: 0, max: 1, noNaN: true })
const halfLife = fc.double({ min: 1, max: 1e8, noNaN: true })
const staleness = fc.option(fc.double({ min: -1e9, max: 1e10, noNaN: true }), { nil: null })

const folder = fc.record({
  path: fc.stringMatching(/^[a-z]{1,4}(\/[a-z]{1,4}){0,2}$/),
  signal: fc.nat({ max: 10_000 }),
  lastVisitedAt: fc.option(fc.integer({ min: 0, max: 2_000_000_000_000 }), { nil: null }),
  outcome: fc.double({ min: 0, max: 1000, noNaN: true })
})

const params = fc.record({
  strategy: fc.constantFrom("weighted" as const, "round-robin" as const, "random" as const),
  alpha: unit,
  outcomeWeight: unit,
  halfLifeSecs: halfLife,
  seed: fc.integer(),
  sweep: fc.integer({ min: 1, max: 10_000 }),
  now: fc.integer({ min: 0, max: 2_000_000_000_000 })
})

describe("recency", () => {
  it("follows the half-life formula at its landmarks", () => {
    assert.strictEqual(recency(null, 100), 1)
    assert.strictEqual(recency(0, 100), 0)
    assert.strictEqual(recency(-5, 100), 0)
    assert.closeTo(recency(100, 100), 0.5, 1e-12)
    assert.closeTo(recency(200, 100), 0.75, 1e-12)
    assert.closeTo(recency(604800, 604800), 1 - Math.exp(-Math.LN2), 1e-12)
  })

  it.prop("stays in [0, 1] and never decreases with staleness", [staleness, staleness, halfLife], ([a, b, h]) => {
    const ra = recency(a, h)
    assert.isTrue(ra >= 0 && ra <= 1)
    if (a !== null && b !== null && a <= b) assert.isTrue(ra <= recency(b, h))
    if (b === null) assert.isTrue(ra <= recency(b, h))
  })
})

describe("weighted score", () => {
  it("is the SPEC blend", () => {
    assert.closeTo(weightedScore({ recency: 1, weight: 0, outcome: 0, alpha: 0.6, outcomeWeight: 0 }), 0.6, 1e-12)
    assert.closeTo(
      weightedScore({ recency: 0.5, weight: 1, outcome: 1, alpha: 0.6, outcomeWeight: 0.5 }),
      0.5 * 0.7 + 0.5,
      1e-12
    )
  })

  it.prop(
    "stays in [0, 1] and rises with each term",
    [unit, unit, unit, unit, unit, unit],
    ([r, w, o, alpha, g, bump]) => {
      const base = { recency: r, weight: w, outcome: o, alpha, outcomeWeight: g }
      const s = weightedScore(base)
      assert.isTrue(s >= -1e-12 && s <= 1 + 1e-12)
      const eps = 1e-12
      assert.isTrue(weightedScore({ ...base, recency: Math.min(1, r + bump) }) >= s - eps)
      assert.isTrue(weightedScore({ ...base, weight: Math.min(1, w + bump) }) >= s - eps)
      assert.isTrue(weightedScore({ ...base, outcome: Math.min(1, o + bump) }) >= s - eps)
    }
  )
})

describe("hashUnit", () => {
  it.prop(
    "is deterministic and in [0, 1)",
    [fc.integer(), fc.integer({ min: 1, max: 1e6 }), fc.string()],
    ([seed, sweep, path]) => {
      const h = hashUnit(seed, sweep, path)
      assert.strictEqual(h, hashUnit(seed, sweep, path))
      assert.isTrue(h >= 0 && h < 1)
    }
  )

  it("changes with seed, sweep and path", () => {
    assert.notStrictEqual(hashUnit(42, 1, "src/api"), hashUnit(43, 1, "src/api"))
    assert.notStrictEqual(hashUnit(42, 1, "src/api"), hashUnit(42, 2, "src/api"))
    assert.notStrictEqual(hashUnit(42, 1, "src/api"), hashUnit(42, 1, "src/apj"))
  })

  it("gives the values it always gave (scores frozen by earlier trails stay comparable)", () => {
    // Computed with the first implementation (a closure over the two lanes); the unrolled one
    // must give the same bits.
    const golden: ReadonlyArray<readonly [number, number, string, number]> = [
      [0, 1, "src/api", 0.3087719995961272],
      [42, 3, "a", 0.49458408197648374],
      [-7, 70000, "area12/sub3/mod12345", 0.8529663089791525],
      [2147483647, 2147483647, "é/日本/x", 0.7329768442734218],
      [1, 0, "", 0.4635108984839058]
    ]
    for (const [seed, sweep, path, h] of golden) assert.strictEqual(hashUnit(seed, sweep, path), h, path)
  })

  it("spreads roughly uniformly", () => {
    const buckets = new Array<number>(10).fill(0)
    for (let i = 0; i < 10_000; i++) buckets[Math.floor(hashUnit(42, 1, `area${i % 97}/mod${i}`) * 10)]!++
    for (const b of buckets) assert.isTrue(b > 850 && b < 1150, `bucket ${b}`)
  })
})

describe("scoreFolders", () => {
  it.prop("is reproducible for the same inputs", [params, fc.array(folder, { maxLength: 30 })], ([p, folders]) => {
    assert.deepStrictEqual(scoreFolders(p, folders), scoreFolders(p, folders))
  })

  it.prop("keeps every score within [0, 1 + ε]", [params, fc.array(folder, { maxLength: 30 })], ([p, folders]) => {
    for (const s of scoreFolders(p, folders)) assert.isTrue(s >= 0 && s <= 1 + TIE_BREAK_EPSILON, String(s))
  })

  it("round-robin hands out the least recently visited first, never-visited before all", () => {
    const p: SweepScoring = {
      strategy: "round-robin",
      alpha: 0.6,
      outcomeWeight: 0,
      halfLifeSecs: 604800,
      seed: 42,
      sweep: 2,
      now: 10_000_000
    }
    const folders: Array<FolderSignal> = [
      { path: "recent", signal: 99, lastVisitedAt: 9_000_000, outcome: 0 },
      { path: "old", signal: 1, lastVisitedAt: 1_000_000, outcome: 0 },
      { path: "never", signal: 0, lastVisitedAt: null, outcome: 0 },
      { path: "middle", signal: 5, lastVisitedAt: 5_000_000, outcome: 0 }
    ]
    const scores = scoreFolders(p, folders)
    const order = folders
      .map((f, i) => [f.path, scores[i]!] as const)
      .sort((a, b) => b[1] - a[1])
      .map(([path]) => path)
    assert.deepStrictEqual(order, ["never", "old", "middle", "recent"])
  })

  it("weighted surfaces heavier folders among equally stale ones, and outcome feedback lifts finders", () => {
    const p: SweepScoring = {
      strategy: "weighted",
      alpha: 0.6,
      outcomeWeight: 0,
      halfLifeSecs: 604800,
      seed: 7,
      sweep: 1,
      now: 0
    }
    const folders: Array<FolderSignal> = [
      { path: "light", signal: 1, lastVisitedAt: null, outcome: 9 },
      { path: "heavy", signal: 100, lastVisitedAt: null, outcome: 0 }
    ]
    const plain = scoreFolders(p, folders)
    assert.isTrue(plain[1]! > plain[0]!)
    const withOutcome = scoreFolders({ ...p, outcomeWeight: 0.9 }, folders)
    assert.isTrue(withOutcome[0]! > withOutcome[1]!)
  })

  it("rotates ties between sweeps with the seeded tie-break", () => {
    const folders: Array<FolderSignal> = Array.from({ length: 20 }, (_, i) => ({
      path: `f${i}`,
      signal: 1,
      lastVisitedAt: null,
      outcome: 0
    }))
    const first = (sweep: number) => {
      const s = scoreFolders(
        { strategy: "round-robin", alpha: 0.6, outcomeWeight: 0, halfLifeSecs: 10, seed: 42, sweep, now: 0 },
        folders
      )
      return folders[s.indexOf(Math.max(...s))]!.path
    }
    const firsts = new Set([1, 2, 3, 4, 5, 6, 7, 8].map(first))
    assert.isTrue(firsts.size > 1)
  })

  it("random is the hash itself", () => {
    const p: SweepScoring = {
      strategy: "random",
      alpha: 0.6,
      outcomeWeight: 0,
      halfLifeSecs: 10,
      seed: 9,
      sweep: 3,
      now: 0
    }
    const [s] = scoreFolders(p, [{ path: "src", signal: 5, lastVisitedAt: 0, outcome: 0 }])
    assert.strictEqual(s, hashUnit(9, 3, "src"))
  })
})

describe("normalise and decayOutcome", () => {
  it("normalise divides by a positive max and is 0 otherwise", () => {
    assert.strictEqual(normalise(5, 10), 0.5)
    assert.strictEqual(normalise(5, 0), 0)
  })

  it("decayOutcome halves per half-life and adds the new findings", () => {
    assert.strictEqual(decayOutcome(0, null, 3, 0, 10), 3)
    assert.closeTo(decayOutcome(8, 0, 1, 10_000, 10), 5, 1e-12)
    assert.closeTo(decayOutcome(8, 0, 0, 20_000, 10), 2, 1e-12)
  })
})
