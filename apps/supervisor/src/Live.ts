/**
 * Every service of one root over one shared database connection: the scheduler, the workers
 * (with both substrates and trail's tmux server) and, on request, the live event log.
 */
import { type TrailConfig } from "@trail/domain"
import { type Project, Scheduler } from "@trail/scheduler"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Database, Migrations } from "@trail/store"
import { Inbox, Processes, Substrate, Tmux, Wakes, Workers } from "@trail/workers"
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
 * Workers (+ Substrates, Tmux) on a Database provided by the caller, and the outside things
 * (Processes, Host, Env, the Node platform) of `Processes.live`.
 */
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
    ),
    Layer.provideMerge(Processes.live)
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

/** The live EventLog over the root's (migrated) Database, and nothing else (`trail log`, `trail events`). */
export const eventLogLayer = (settings: RootSettings) =>
  EventLogLive.layer({ stateDir: settings.project.stateDir }).pipe(
    Layer.provideMerge(Migrations.layer),
    Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile })),
    Layer.provide(NodeFileSystem.layer.pipe(Layer.provide(Wakes.watchBackend)))
  )
