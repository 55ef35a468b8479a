import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { progressEnabled, startProgress } from "../../../src/cli/progress";

/** A terminal that records what is written to it. */
function fakeTerminal(): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream: Object.assign(stream, { isTTY: true, columns: 120 }) as unknown as NodeJS.WriteStream, text: () => chunks.join("") };
}

const stdoutIsTTY = Object.getOwnPropertyDescriptor(process.stdout, "isTTY");

/** Makes this process's stdout look like a terminal (or not) for startProgress. */
function stdoutTTY(isTTY: boolean): void {
  Object.defineProperty(process.stdout, "isTTY", { value: isTTY, configurable: true, writable: true });
}

afterEach(() => {
  if (stdoutIsTTY) Object.defineProperty(process.stdout, "isTTY", stdoutIsTTY);
  else delete (process.stdout as { isTTY?: boolean }).isTTY;
  vi.unstubAllEnvs();
});

describe("progress bars", () => {
  it("are drawn only when stdout and stderr are terminals and CI is not set", () => {
    const tty = { isTTY: true };
    const pipe = { isTTY: false };
    expect(progressEnabled(tty, tty, {})).toBe(true);
    expect(progressEnabled(tty, tty, { CI: "false" })).toBe(true);
    expect(progressEnabled(pipe, tty, {})).toBe(false);
    expect(progressEnabled({}, tty, {})).toBe(false);
    expect(progressEnabled(tty, pipe, {})).toBe(false);
    expect(progressEnabled(tty, tty, { CI: "true" })).toBe(false);
    expect(progressEnabled(tty, tty, { CI: "1" })).toBe(false);
  });

  it("write nothing and leave the console alone where they are not drawn", () => {
    const log = console.log;
    for (const [isTTY, ci] of [
      [false, ""],
      [true, "true"],
    ] as const) {
      stdoutTTY(isTTY);
      vi.stubEnv("CI", ci);
      const terminal = fakeTerminal();
      const progress = startProgress("run", 3, terminal.stream);
      expect(console.log).toBe(log);
      progress.step("one");
      progress.tick();
      progress.stop();
      expect(terminal.text()).toBe("");
    }
  });

  it("draw the count and the current step, put console output above the bar, and restore the console when stopped", () => {
    stdoutTTY(true);
    vi.stubEnv("CI", "");
    const log = console.log;
    const terminal = fakeTerminal();
    const progress = startProgress("suite", 4, terminal.stream);
    expect(console.log).not.toBe(log);
    // One bar at a time: a nested run gets none.
    const nested = startProgress("nested", 2, terminal.stream);
    progress.step("rate 40/s");
    console.log("a result line", 42);
    progress.tick(3);
    progress.step("rate 80/s");
    console.log("another");
    progress.stop();
    nested.tick();
    nested.stop();
    expect(console.log).toBe(log);
    const text = terminal.text();
    expect(text).toContain("a result line 42\n");
    expect(text).toContain("another\n");
    expect(text).toMatch(/suite .* 0\/4 .*\| rate 40\/s/);
    expect(text).toMatch(/suite .* 3\/4 .*\| rate 80\/s/);
    expect(text).not.toContain("nested");
    // Each line logged comes before the bar drawn after it.
    expect(text.indexOf("a result line")).toBeLessThan(text.lastIndexOf("0/4"));
    // Stopped: a bar can be started again.
    const again = startProgress("again", 1, terminal.stream);
    again.stop();
    expect(terminal.text()).toContain("again");
  });
});
