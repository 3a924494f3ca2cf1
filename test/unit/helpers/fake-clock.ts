import type { Clock } from "../../../provider/util/clock";

/** A clock whose sleeps return at once and move time forward by what was asked. */
export class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export class RecordingLogger {
  readonly lines: Array<{ level: string; message: string }> = [];
  debug = (m: string): void => void this.lines.push({ level: "debug", message: m });
  info = (m: string): void => void this.lines.push({ level: "info", message: m });
  warn = (m: string): void => void this.lines.push({ level: "warn", message: m });
  error = (m: string): void => void this.lines.push({ level: "error", message: m });
  get warnings(): string[] {
    return this.lines.filter((l) => l.level === "warn").map((l) => l.message);
  }
}
