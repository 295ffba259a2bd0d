// Training progress on stderr. On a terminal: one bar redrawn in place (cli-progress) with the
// step, loss, steps per second and time left. Elsewhere (CI, a file, a pipe) redrawing would fill
// the log with escape codes, so plain lines come every N steps or every S seconds instead:
//   step 120/300  loss 0.4123  3.1 steps/s  ETA 58s
// The stream and the clock are injected, so what is printed depends on the calls alone.
import cliProgress from 'cli-progress';

/** What the reporter writes to: process.stderr, or anything with `write` (tests). */
export interface ProgressStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressOptions {
  /** The step training ends at. */
  readonly total: number;
  /** The step training starts after (a resumed run's step): rates count only the steps run here. */
  readonly startStep?: number;
  readonly stream?: ProgressStream;
  /** Milliseconds on any monotonic clock (default: performance.now). */
  readonly now?: () => number;
  /** Draw a bar (default: whether the stream is a terminal). */
  readonly tty?: boolean;
  /** Without a terminal: a line at least every this many steps (default: a twentieth of the run)... */
  readonly everySteps?: number;
  /** ...or when this many seconds have passed since the last line (default 30). */
  readonly everySeconds?: number;
}

/** The loss and any other numbers to show, by name (`lr`, `grad_norm`, ...). */
export interface ProgressValues {
  readonly loss: number;
  readonly [name: string]: number;
}

export interface Progress {
  /** Reports that `step` is done. */
  update(step: number, values: ProgressValues): void;
  /** Prints a line of its own (checkpoint saved, a warning) without breaking the bar. */
  log(message: string): void;
  /** Ends the bar and prints a summary line. Call it: a bar's redraw timer keeps the process alive until then. */
  finish(): void;
}

/** 58s, 2m05s, 1h02m, 3d04h: two units at most, so a glance suffices. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

export const formatRate = (r: number): string =>
  (!Number.isFinite(r) || r <= 0 ? '?' : r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toPrecision(2));

const formatValue = (v: number): string => (Number.isFinite(v) ? (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(4)) : String(v).toLowerCase());

/**
 * Steps per second over a window of recent updates: long enough to smooth out a slow step (a
 * checkpoint save), short enough to follow a change of pace.
 */
class RateMeter {
  private samples: [number, number][] = [];
  constructor(private readonly window = 20) {}
  add(t: number, step: number): void {
    this.samples.push([t, step]);
    if (this.samples.length > this.window) this.samples.shift();
  }
  rate(): number {
    if (this.samples.length < 2) return NaN;
    const [t0, s0] = this.samples[0];
    const [t1, s1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((s1 - s0) * 1000) / (t1 - t0) : NaN;
  }
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? (() => performance.now());
  const total = options.total;
  const startStep = options.startStep ?? 0;
  const started = now();
  const meter = new RateMeter();
  meter.add(started, startStep);
  let step = startStep;
  let values: ProgressValues = { loss: NaN };

  const eta = () => (total - step) / meter.rate();
  const extras = () => Object.entries(values).filter(([k]) => k !== 'loss').map(([k, v]) => `  ${k} ${formatValue(v)}`).join('');
  const line = () => `step ${step}/${total}  loss ${formatValue(values.loss)}${extras()}  ${formatRate(meter.rate())} steps/s  ETA ${formatDuration(eta())}`;
  const summary = () => {
    const seconds = (now() - started) / 1000;
    const done = step - startStep;
    return `done: ${done} step${done === 1 ? '' : 's'} in ${formatDuration(seconds)} (${formatRate(seconds > 0 ? done / seconds : NaN)} steps/s), final loss ${formatValue(values.loss)}`;
  };

  if (options.tty ?? stream.isTTY === true) {
    const multi = new cliProgress.MultiBar({
      stream: stream as NodeJS.WritableStream,
      format: 'step {value}/{total} [{bar}] loss {loss}{extras}  {rate} steps/s  ETA {eta_text}',
      barsize: 24,
      hideCursor: false, // a crash would leave the terminal without a cursor
      gracefulExit: false, // its SIGINT handler would keep the process alive: the trainer decides
      clearOnComplete: false,
      autopadding: true,
    });
    const payload = () => ({ loss: formatValue(values.loss), extras: extras(), rate: formatRate(meter.rate()), eta_text: formatDuration(eta()) });
    const bar = multi.create(total, startStep, payload());
    let stopped = false;
    return {
      update(s, v) {
        step = s;
        values = v;
        meter.add(now(), s);
        bar.update(s, payload());
      },
      log(message) {
        if (stopped) stream.write(`${message}\n`);
        else multi.log(`${message}\n`);
      },
      finish() {
        if (stopped) return;
        stopped = true;
        bar.update(step, payload());
        multi.update(); // flushes messages from log() that no redraw has shown yet
        multi.stop();
        stream.write(`${summary()}\n`);
      },
    };
  }

  const everySteps = Math.max(1, options.everySteps ?? Math.round(Math.max(0, total - startStep) / 20));
  const everyMs = (options.everySeconds ?? 30) * 1000;
  let lastStep = startStep;
  let lastTime = started;
  let finished = false;
  const print = (t: number) => {
    stream.write(`${line()}\n`);
    lastStep = step;
    lastTime = t;
  };
  return {
    update(s, v) {
      step = s;
      values = v;
      const t = now();
      meter.add(t, s);
      if (s >= total || s - lastStep >= everySteps || t - lastTime >= everyMs) print(t);
    },
    log(message) {
      stream.write(`${message}\n`);
    },
    finish() {
      if (finished) return;
      finished = true;
      if (step !== lastStep) print(now());
      stream.write(`${summary()}\n`);
    },
  };
}
