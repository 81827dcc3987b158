// Structured logs: one JSON object per line on stderr, so they can be grepped
// and shipped as they are. Levels gate noise; per-task events are debug only.

export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export class Logger {
  private readonly threshold: number;
  constructor(
    private readonly component: string,
    level: LogLevel = "info",
    private readonly out: (line: string) => void = (line) => process.stderr.write(line),
  ) {
    this.threshold = LOG_LEVELS.indexOf(level);
  }

  debug(event: string, fields: Record<string, unknown> = {}): void {
    this.write("debug", event, fields);
  }
  info(event: string, fields: Record<string, unknown> = {}): void {
    this.write("info", event, fields);
  }
  warn(event: string, fields: Record<string, unknown> = {}): void {
    this.write("warn", event, fields);
  }
  error(event: string, fields: Record<string, unknown> = {}): void {
    this.write("error", event, fields);
  }

  private write(level: LogLevel, event: string, fields: Record<string, unknown>): void {
    if (LOG_LEVELS.indexOf(level) < this.threshold) return;
    this.out(JSON.stringify({ ts: new Date().toISOString(), level, component: this.component, event, ...fields }) + "\n");
  }
}
