/** Stands in for react-devtools-core in the TUI bundle: Ink only uses it when DEV=true. */
export default { initialize: () => undefined, connectToDevTools: () => undefined }
