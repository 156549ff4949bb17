export * from "./Paths.js"
export * from "./Bundle.js"
export * from "./Checkpoints.js"
export * as Search from "./Search.js"
