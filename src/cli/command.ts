/**
 * What the CLIs (`npm run plan`, `npm run profile`, `npm run bench`) share, on commander: `--help`
 * lists every option with its default, `--version` prints the project's version, and a usage error
 * (an unknown option, a bad value, an unknown model or suite, a missing option) is one line
 * `error: ...` on stderr, a hint to --help after it, and exit code 2, never a stack trace.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command, InvalidArgumentError } from "commander";

export { Command, InvalidArgumentError, Option } from "commander";

/** Exit code of every CLI on a usage error. */
export const USAGE_EXIT_CODE = 2;

/** The project's version (package.json), which `--version` prints. */
export const VERSION = (JSON.parse(readFileSync(resolve(import.meta.dirname, "../../package.json"), "utf8")) as { version: string }).version;

/** A CLI run as `npm run <script> -- [options]`: usage lines name it so, and usage errors are reported the common way. */
export function cliProgram(script: string, description: string): Command {
  return uniformErrors(new Command(`npm run ${script} --`).description(description).version(VERSION), `npm run ${script} --`);
}

/**
 * Makes `command` report usage errors the common way; `invocation` is how a user runs it (e.g. `npm
 * run bench -- edge`), for the hint. Subcommands created from `command` afterwards inherit it all
 * but the hint: call this on each of them too.
 */
export function uniformErrors(command: Command, invocation: string): Command {
  return (
    command
      .showHelpAfterError(`(see \`${invocation} --help\`)`)
      // commander puts "(Did you mean --quick?)" on a line of its own: keep the error one line.
      .configureOutput({ outputError: (text, write) => write(text.replace(/\n\(Did you mean (.*)\?\)/, " (did you mean $1?)")) })
      // commander exits 1 on a usage error: 2 here, as the CLIs always have (0 after --help and --version).
      .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : USAGE_EXIT_CODE))
  );
}

/** An option value parser: a finite number for which `ok` holds; otherwise a usage error saying what was `expected`. */
export function numberWhere(expected: string, ok: (n: number) => boolean = () => true): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || !ok(n)) throw new InvalidArgumentError(`expected ${expected}.`);
    return n;
  };
}

/** An option value parser: an integer in [min, max]. */
export function integerIn(min: number, max: number): (value: string) => number {
  return numberWhere(`an integer in [${min}, ${max}]`, (n) => Number.isInteger(n) && n >= min && n <= max);
}

/** An option value parser: a comma-separated list of `what`s (e.g. models), each one of `known`. */
export function listOf(what: string, known: readonly string[]): (value: string) => string[] {
  return (value) => {
    const items = value.split(",").map((item) => item.trim()).filter((item) => item !== "");
    if (!items.length) throw new InvalidArgumentError(`expected a comma-separated list of ${what}s (${known.join(", ")}).`);
    const unknown = items.find((item) => !known.includes(item));
    if (unknown !== undefined) throw new InvalidArgumentError(`unknown ${what} "${unknown}"; known: ${known.join(", ")}.`);
    return items;
  };
}

/** An option value parser for a repeatable option (`--model a --model b`): collects the values. */
export function repeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** An option value parser: an http(s) URL. */
export function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected an http(s) URL, e.g. http://127.0.0.1:8787.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError("expected an http(s) URL, e.g. http://127.0.0.1:8787.");
  return value;
}
