/**
 * `trail log`'s forensic timeline (SPEC §3): the event log cut into episodes, one per subject
 * (a worker, a session, a supervisor). Pure functions over events read elsewhere.
 */
import type { Subject, TrailEvent } from "@trail/domain"

/** Every event of one subject, in log order. */
export interface Episode {
  readonly subject: Subject
  readonly events: ReadonlyArray<TrailEvent>
}

/**
 * Groups `events` (in log order) by subject: one episode per subject, episodes in the order their
 * first event was logged, each episode's events in the order given.
 */
export const episodes = (events: Iterable<TrailEvent>): Array<Episode> => {
  const bySubject = new Map<string, { subject: Subject; events: Array<TrailEvent> }>()
  for (const event of events) {
    // A subject is its type and id together: a worker and a session may share an id.
    const key = `${event.subject.type}:${event.subject.id}`
    const episode = bySubject.get(key)
    if (episode === undefined) bySubject.set(key, { subject: event.subject, events: [event] })
    else episode.events.push(event)
  }
  return [...bySubject.values()]
}
