import { assert, describe, it } from "@effect/vitest"
import { compileGlobs, compileIgnore, expandBraces } from "../src/Glob.js"

const ignored = (text: string, path: string, isDirectory = false) => compileIgnore([text]).test(path, isDirectory)
const glob = (pattern: string, path: string) => compileGlobs([pattern])!.matches(path)

describe("Glob", () => {
  it("gitignore: names at any depth, anchored paths, directory-only rules, negation, the last rule decides", () => {
    assert.strictEqual(ignored("*.log", "a/b/x.log"), "ignored")
    assert.strictEqual(ignored("build", "src/build", true), "ignored")
    assert.strictEqual(ignored("/build", "src/build", true), null)
    assert.strictEqual(ignored("/build", "build", true), "ignored")
    assert.strictEqual(ignored("doc/frotz", "doc/frotz", true), "ignored")
    assert.strictEqual(ignored("doc/frotz", "a/doc/frotz", true), null)
    assert.strictEqual(ignored("tmp/", "tmp", false), null)
    assert.strictEqual(ignored("tmp/", "tmp", true), "ignored")
    assert.strictEqual(ignored("*.log\n!keep.log", "keep.log"), "unignored")
    assert.strictEqual(ignored("!keep.log\n*.log", "keep.log"), "ignored")
    assert.strictEqual(ignored("# comment\n\n\\#hash", "#hash"), "ignored")
    assert.strictEqual(ignored("\\!bang", "!bang"), "ignored")
    assert.strictEqual(ignored("trailing   ", "trailing"), "ignored")
    assert.strictEqual(ignored("crlf\r", "crlf"), "ignored")
  })

  it("characters outside the BMP are one character to ?, * and classes", () => {
    assert.isTrue(glob("*😀", "a😀"))
    assert.isTrue(glob("a?b", "a😀b"))
    assert.isTrue(glob("[😀-😂]x", "😁x"))
    assert.isFalse(glob("[!😀]x", "😀x"))
    assert.strictEqual(ignored("\\😀*", "😀.log"), "ignored")
  })

  it("the fast paths (`*` then a literal, a path rule's depth) decide as the general match", () => {
    assert.strictEqual(ignored("*.log", "x.log"), "ignored")
    assert.strictEqual(ignored("*.log", ".log"), "ignored") // `*` matches nothing too
    assert.strictEqual(ignored("*.log", "x.logs"), null)
    assert.strictEqual(ignored("*😀", "a/b/x😀"), "ignored")
    assert.strictEqual(ignored("*", "anything", true), "ignored")
    assert.strictEqual(ignored("*a*b", "xaxb"), "ignored") // more than one star: the general match
    assert.strictEqual(ignored("/out", "out", true), "ignored")
    assert.strictEqual(ignored("/out", "a/out", true), null)
    assert.strictEqual(ignored("a/b", "a/b"), "ignored")
    assert.strictEqual(ignored("a/b", "a/b/c"), null)
    assert.strictEqual(ignored("a/*.log", "a/x.log"), "ignored")
    assert.strictEqual(ignored("a/*.log", "a/b/x.log"), null)
    assert.strictEqual(ignored("a/**/b", "a/x/y/b"), "ignored")
    assert.strictEqual(ignored("a**b/c", "axyb/c"), "ignored") // `**` inside a segment is a `*`
    assert.isTrue(glob("src/*.ts", "src/a.ts"))
    assert.isFalse(glob("src/*.ts", "src/a.tsx"))
  })

  it("gitignore: ** segments, ? and classes", () => {
    assert.strictEqual(ignored("**/foo", "a/b/foo", true), "ignored")
    assert.strictEqual(ignored("**/foo", "foo", true), "ignored")
    assert.strictEqual(ignored("a/**/b", "a/b", true), "ignored")
    assert.strictEqual(ignored("a/**/b", "a/x/y/b", true), "ignored")
    // A trailing /** matches what is inside, not the folder itself (git).
    assert.strictEqual(ignored("a/**", "a", true), null)
    assert.strictEqual(ignored("a/**", "a/x", true), "ignored")
    assert.strictEqual(ignored("file?.txt", "file1.txt"), "ignored")
    assert.strictEqual(ignored("file?.txt", "file10.txt"), null)
    assert.strictEqual(ignored("[a-c]x", "bx"), "ignored")
    assert.strictEqual(ignored("[!a-c]x", "bx"), null)
    assert.strictEqual(ignored("[!a-c]x", "dx"), "ignored")
    assert.strictEqual(ignored("a**b", "a/b"), null)
    assert.strictEqual(ignored("a**b", "axxb"), "ignored")
  })

  it("globs: whole-path match, ** across folders, a trailing /** includes the folder, braces", () => {
    assert.isTrue(glob("src/**", "src"))
    assert.isTrue(glob("src/**", "src/a/b"))
    assert.isFalse(glob("src/*", "src/a/b"))
    assert.isTrue(glob("**/test", "a/b/test"))
    assert.isTrue(glob("**/*", "a"))
    assert.isFalse(glob("src", "src/a"))
    assert.deepStrictEqual(expandBraces("{a,b{c,d}}/x"), ["a/x", "bc/x", "bd/x"])
    assert.deepStrictEqual(expandBraces("\\{a,b}"), ["\\{a,b}"])
    assert.isTrue(glob("{src,lib}/**", "lib/x"))
  })

  it("a pattern that is exponential as a backtracking regular expression matches in linear time", () => {
    const name = "a".repeat(5_000)
    const started = Date.now()
    assert.strictEqual(ignored("a*a*a*a*a*a*a*a*a*a*a*a*c", name, true), null)
    assert.isFalse(glob("**/a*a*a*a*a*a*a*a*a*a*a*a*c/**", `x/${name}/y`))
    assert.isTrue(glob("a*a*a*a*a*a*a*a*a*a*a*a*c", `${name}c`))
    assert.isBelow(Date.now() - started, 1_000)
  })
})
