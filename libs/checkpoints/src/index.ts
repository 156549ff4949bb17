export * from "./Paths.js"
