export * as Tmux from "./Tmux.js"
export * as Kinds from "./Kinds.js"
export * as TaskFile from "./TaskFile.js"
export * as ChangeSets from "./ChangeSets.js"
