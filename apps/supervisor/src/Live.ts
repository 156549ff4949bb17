/**
 * Every service of one root over one shared database connection: the scheduler, the workers
 * (with both substrates and trail's tmux server) and, on request, the live event log.
 */
import { type TrailConfig } from "@trail/domain"
import { type Project, Scheduler } from "@trail/scheduler"
import { Database, Migrations } from "@trail/store"
import { Inbox, Processes, Substrate, Tmux, Workers } from "@trail/workers"
import { Layer } from "effect"
import * as EventLogLive from "./EventLog.js"
import { Supervisor } from "./Supervisor.js"

export interface RootSettings {
  readonly project: Project.Project
  readonly config: TrailConfig
  /** How workers run trail (argv), e.g. `[process.execPath, "/…/bin/trail.cjs"]`. */
  readonly trailCommand: ReadonlyArray<string>
  /** `~/.config/trail/kinds`. */
  readonly userKindsDir: string
  readonly walkWorker?: string | undefined
}

/**
 * Every outside thing the layers below ask of their caller (Processes, Host, Env, the Node
 * platform): `Processes.live`. The CLI builds it once for the whole command, so the layers of a
 * root take it from their caller instead of building a second copy (each layer built costs a
 * `trail` start CPU time: ~10 ms for this one, issue 14).
 */
export const outside = Processes.live

/** Workers (+ Substrates, Tmux) on a Database and the {@link outside} things, both provided by the caller. */
export const workersOn = (settings: RootSettings) =>
  Workers.layer.pipe(
    Layer.provide(Substrate.layer(settings.config.worker.substrate)),
    Layer.provide(Tmux.layer({ socket: settings.config.worker.tmux_socket, session: settings.config.worker.session })),
    Layer.provide(
      Layer.succeed(Workers.WorkerSettingsTag, {
        root: settings.project.root,
        stateDir: settings.project.stateDir,
        config: settings.config,
        trailCommand: settings.trailCommand,
        userKindsDir: settings.userKindsDir,
        configFile: settings.project.configFile
      })
    )
  )

/** Workers + Database for one root (what the worker commands of the CLI need). */
export const workersLayer = (settings: RootSettings) =>
  workersOn(settings).pipe(Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile })))

/** Inbox + Workers + Database (the inbox commands). */
export const inboxLayer = (settings: RootSettings) =>
  Inbox.layer.pipe(
    Layer.provideMerge(workersOn(settings)),
    Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile }))
  )

/** The Supervisor with Scheduler + Workers + Inbox + the live EventLog over one Database (`trail supervise`, `trail events --follow`). */
export const supervisorLayer = (settings: RootSettings) =>
  Supervisor.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        Scheduler.layerOn({ project: settings.project, config: settings.config }, { walkWorker: settings.walkWorker }),
        Inbox.layer,
        EventLogLive.layer({ stateDir: settings.project.stateDir })
      )
    ),
    Layer.provideMerge(workersOn(settings)),
    Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile }))
  )

/** The live EventLog over the root's (migrated) Database, and nothing else (`trail log`, `trail events`); the FileSystem from the caller. */
export const eventLogLayer = (settings: RootSettings) =>
  EventLogLive.layer({ stateDir: settings.project.stateDir }).pipe(
    Layer.provideMerge(Migrations.layer),
    Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile }))
  )
