export * as EventLogLive from "./EventLog.js"
export * as Live from "./Live.js"
export * as Supervisor from "./Supervisor.js"
