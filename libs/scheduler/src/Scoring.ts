/**
 * Scoring: pure functions with explicit inputs (no clock, no global RNG), as SPEC §1 gives them.
 * A sweep freezes each folder's score when it opens; higher scores are handed out first.
 *
 * - `recency = 1 - exp(-ln2 · staleness / half_life)`: 0 when staleness ≤ 0, 0.5 at one
 *   half-life, → 1 as staleness grows; a folder never visited under the task has recency 1.
 * - `weight`: the folder's static signal (file count, bytes or churn) divided by the sweep's max.
 * - `outcome`: the folder's decayed recent findings divided by the sweep's max.
 * - `weighted = (1-g)·(α·recency + (1-α)·weight) + g·outcome`, `round-robin = recency`,
 *   `random = hash(seed, sweep, path)`.
 * - A seeded tie-break of at most {@link TIE_BREAK_EPSILON} makes the order total and rotates
 *   ties between sweeps, without reordering folders whose scores differ meaningfully.
 */
import type { Strategy } from "@trail/domain"

/** Largest tie-break added to a score; below the smallest difference scoring cares about. */
export const TIE_BREAK_EPSILON = 1e-12

/**
 * Recency from staleness, both in seconds. `staleness` is `null` for a folder never visited.
 * Result in [0, 1].
 */
export const recency = (stalenessSecs: number | null, halfLifeSecs: number): number => {
  if (stalenessSecs === null) return 1
  if (!(stalenessSecs > 0)) return 0
  return 1 - Math.exp((-Math.LN2 * stalenessSecs) / halfLifeSecs)
}

/** `value / max`, or 0 when `max` is not positive. Result in [0, 1] for 0 ≤ value ≤ max. */
export const normalise = (value: number, max: number): number => (max > 0 ? value / max : 0)

export interface WeightedTerms {
  readonly recency: number
  readonly weight: number
  readonly outcome: number
  /** α in [0, 1]: share of recency against the static weight. */
  readonly alpha: number
  /** g in [0, 1]: share of outcome feedback. */
  readonly outcomeWeight: number
}

/** `(1-g)(α·recency + (1-α)·weight) + g·outcome`. In [0, 1] when every term is. */
export const weightedScore = (t: WeightedTerms): number =>
  (1 - t.outcomeWeight) * (t.alpha * t.recency + (1 - t.alpha) * t.weight) + t.outcomeWeight * t.outcome

/**
 * A deterministic hash of `(seed, sweep, path)` mapped uniformly onto [0, 1).
 * Two independent 32-bit multiply–xorshift lanes over the UTF-16 code units, folded into 53 bits
 * (the construction of the public-domain cyrb53 hash).
 */
export const hashUnit = (seed: number, sweep: number, path: string): number => {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ Math.imul(sweep, 0x9e3779b1)
  // The mixing step is written out, not a closure over h1 and h2: V8 keeps captured variables
  // that a closure writes in a heap context, which made this ~5× slower (a sweep hashes every
  // folder's path: 200,000 at scale).
  let code = sweep & 0xffff
  h1 = Math.imul(h1 ^ code, 2654435761)
  h2 = Math.imul(h2 ^ code, 1597334677)
  code = sweep >>> 16
  h1 = Math.imul(h1 ^ code, 2654435761)
  h2 = Math.imul(h2 ^ code, 1597334677)
  for (let i = 0; i < path.length; i++) {
    code = path.charCodeAt(i)
    h1 = Math.imul(h1 ^ code, 2654435761)
    h2 = Math.imul(h2 ^ code, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507)
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  const bits53 = 2097152 * (h2 >>> 0) + (h1 >>> 11)
  return bits53 / 9007199254740992
}

/** Everything a sweep needs to score its folders. Times in milliseconds since the epoch. */
export interface SweepScoring {
  readonly strategy: Strategy
  readonly alpha: number
  readonly outcomeWeight: number
  readonly halfLifeSecs: number
  readonly seed: number
  readonly sweep: number
  readonly now: number
}

/** One folder's inputs. `lastVisitedAt` is null when never visited under the task. */
export interface FolderSignal {
  readonly path: string
  /** The static signal (file count, bytes or churn); ≥ 0. */
  readonly signal: number
  readonly lastVisitedAt: number | null
  /** Decayed recent findings (see {@link decayOutcome}); ≥ 0. */
  readonly outcome: number
}

/** The sweep-wide maxima that normalise `weight` and `outcome` (see {@link sweepMaxima}). */
export interface SweepMaxima {
  /** Largest static signal of the sweep's folders, or 0. */
  readonly maxSignal: number
  /** Largest decayed outcome of the sweep's folders, or 0. */
  readonly maxOutcome: number
}

/** The maxima of `folders` (0 when there are none or all are ≤ 0). */
export const sweepMaxima = (folders: Iterable<Pick<FolderSignal, "signal" | "outcome">>): SweepMaxima => {
  let maxSignal = 0
  let maxOutcome = 0
  for (const f of folders) {
    if (f.signal > maxSignal) maxSignal = f.signal
    if (f.outcome > maxOutcome) maxOutcome = f.outcome
  }
  return { maxSignal, maxOutcome }
}

/**
 * One folder's frozen score in a sweep whose maxima are `maxima`: the one implementation of the
 * formula, for {@link scoreFolders} and for the SQL function the store opens sweeps with.
 */
export const scoreFolder = (params: SweepScoring, maxima: SweepMaxima, f: FolderSignal): number => {
  const hash = hashUnit(params.seed, params.sweep, f.path)
  if (params.strategy === "random") return hash
  const staleness = f.lastVisitedAt === null ? null : (params.now - f.lastVisitedAt) / 1000
  const r = recency(staleness, params.halfLifeSecs)
  const base =
    params.strategy === "round-robin"
      ? r
      : weightedScore({
          recency: r,
          weight: normalise(f.signal, maxima.maxSignal),
          outcome: normalise(f.outcome, maxima.maxOutcome),
          alpha: params.alpha,
          outcomeWeight: params.outcomeWeight
        })
  return base + TIE_BREAK_EPSILON * hash
}

/** Scores every folder of a sweep. The result is aligned with `folders`. */
export const scoreFolders = (params: SweepScoring, folders: ReadonlyArray<FolderSignal>): Float64Array => {
  const maxima = sweepMaxima(folders)
  const scores = new Float64Array(folders.length)
  folders.forEach((f, i) => {
    scores[i] = scoreFolder(params, maxima, f)
  })
  return scores
}

/**
 * Exponentially decayed findings: the previous value halves every `halfLifeSecs`, then `found`
 * is added. `previousAt`/`now` in milliseconds; `previousAt` null means no previous value.
 */
export const decayOutcome = (
  previous: number,
  previousAt: number | null,
  found: number,
  now: number,
  halfLifeSecs: number
): number => {
  if (previousAt === null) return found
  const elapsed = Math.max(0, (now - previousAt) / 1000)
  return previous * Math.pow(2, -elapsed / halfLifeSecs) + found
}
