// The terminal-kit shell: alternate screen, hidden cursor, raw keys, resize,
// and painting Lines. All terminal state changes are undone by close(), which
// is safe to call twice and runs on every way out (q, Ctrl-C, signals, crash).

import * as termkit from "terminal-kit";
import type { Line, LineStyle } from "./render.ts";

type Terminal = typeof termkit.terminal;

export interface ScreenEvents {
  /** A key name as terminal-kit gives it: "q", "CTRL_C", "UP", ... */
  onKey(name: string): void;
  /** The terminal changed size; the screen is already cleared. */
  onResize(): void;
}

export class Screen {
  private readonly term: Terminal;
  private open = false;

  constructor(private readonly events: ScreenEvents) {
    // Reading `terminal` creates it (terminal-kit makes it lazily): only here,
    // so --once and --help never touch the tty.
    this.term = termkit.terminal;
  }

  /**
   * Columns we may draw in. One fewer than the terminal has: writing the very
   * last cell of the bottom row makes some terminals wrap and scroll the frame.
   */
  get width(): number {
    return Math.max(1, (this.term.width || 80) - 1);
  }

  get height(): number {
    return Math.max(1, this.term.height || 24);
  }

  start(): void {
    this.open = true;
    this.term.fullscreen(true);
    this.term.hideCursor(true);
    this.term.grabInput(true);
    this.term.on("key", (name: string) => this.events.onKey(name));
    this.term.on("resize", () => {
      if (!this.open) return;
      // A full clear: after a shrink the old, longer lines would stay behind.
      this.term.clear();
      this.events.onResize();
    });
  }

  /** Paints the frame from the top-left, overwriting in place so it does not flicker. */
  draw(lines: readonly Line[]): void {
    if (!this.open) return;
    const t = this.term;
    for (let i = 0; i < lines.length && i < this.height; i++) {
      t.moveTo(1, i + 1);
      t.styleReset();
      const { style, text } = lines[i]!;
      // The title is drawn inverse: padded, it becomes a bar across the screen.
      paint(t, style, style === "title" ? text.padEnd(this.width) : text);
      t.styleReset();
      t.eraseLineAfter();
    }
    if (lines.length < this.height) {
      t.moveTo(1, lines.length + 1);
      t.eraseDisplayBelow();
    }
  }

  /** Gives the terminal back as we found it: main screen, cursor, cooked input. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    const t = this.term;
    t.styleReset();
    t.hideCursor(false);
    t.grabInput(false);
    t.fullscreen(false);
  }
}

/** noFormat: our text is data (addresses, tags) and must not be read as ^-markup or %-format. */
function paint(t: Terminal, style: LineStyle, text: string): void {
  switch (style) {
    case "title":
      return void t.bold.inverse.noFormat(text);
    case "heading":
      return void t.bold.cyan.noFormat(text);
    case "error":
      return void t.bold.brightRed.noFormat(text);
    case "dim":
      return void t.brightBlack.noFormat(text);
    case "spark":
      return void t.green.noFormat(text);
    case "selected":
      return void t.inverse.noFormat(text);
    case "normal":
      return void t.noFormat(text);
  }
}
