/** Small statistics for the bench scripts: the samples are never empty when these are called. */
import * as fs from "node:fs"

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

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
export const CLK_TCK = 100

/** utime + stime of a process in clock ticks, and its resident set in kB (Linux /proc). */
export const procSample = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0)
  return { ticks, rssKb: rss }
}

/** Percent of one core used between two {@link procSample}s taken `secs` apart. */
export const cpuPercent = (a: { readonly ticks: number }, b: { readonly ticks: number }, secs: number) =>
  Math.round(((b.ticks - a.ticks) / CLK_TCK / secs) * 100 * 1000) / 1000
