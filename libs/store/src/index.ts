export * as Database from "./Database.js"
export * as Events from "./Events.js"
export * as Migrations from "./Migrations.js"
export * as Rows from "./Rows.js"
