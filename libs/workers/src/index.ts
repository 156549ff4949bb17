export * as Tmux from "./Tmux.js"
