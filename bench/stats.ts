/** Small statistics for the bench scripts: the samples are never empty when these are called. */

/** `xs[i]`; throws rather than let a missing sample turn into NaN in a printed figure. */
export const at = <T>(xs: ReadonlyArray<T>, i: number): T => {
  const x = xs[i]
  if (x === undefined) throw new Error(`no sample at ${i} of ${xs.length}`)
  return x
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? at(s, mid) : (at(s, mid - 1) + at(s, mid)) / 2
}

/** The nearest-rank percentile (`p` in 0–100). */
export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return at(sorted, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))
}
