export * from "./Paths.js"
export * from "./Bundle.js"
