// The training log: JSON Lines, one object per optimizer step that is logged,
//   {"step":120,"loss":0.4123,"grad_norm":1.7,"lr":0.0001,"seconds":38.2, ...extras}
// readable by jq, pandas (`read_json(lines=True)`) and `readTrainLog`. Non-finite numbers (a loss
// that diverged) are written as null, which JSON allows and pandas reads as NaN.
//
// The file is opened in append mode and each record goes out in one write of a whole line, so a
// crash can at worst leave a torn last line. On resume the log is cut back to the resumed step
// (the steps after it will be run again, and would otherwise appear twice), dropping any torn line.
import fs from 'node:fs';
import type { Json } from '../compiler/ir/json.ts';

export interface TrainRecord {
  readonly step: number;
  readonly loss: number;
  readonly grad_norm: number;
  readonly lr: number;
  /** Wall-clock seconds since training began (a resumed run continues the count). */
  readonly seconds: number;
  /** Anything else worth plotting: loss terms, EMA loss, throughput, ... */
  readonly [extra: string]: Json | number;
}

export class TrainLogError extends Error {
  override name = 'TrainLogError';
}

const CORE = ['step', 'loss', 'grad_norm', 'lr', 'seconds'] as const;

/** One line, core fields first in a fixed order, non-finite numbers as null. */
export function formatRecord(r: TrainRecord): string {
  const ordered: Record<string, unknown> = {};
  for (const k of CORE) ordered[k] = r[k];
  for (const [k, v] of Object.entries(r)) if (!(k in ordered)) ordered[k] = v;
  return `${JSON.stringify(ordered, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`;
}

/** Parses one line; null when it is not a record (torn, not JSON, no numeric step). */
function parseRecord(line: string): TrainRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, Json>;
  if (typeof o.step !== 'number' || !Number.isSafeInteger(o.step)) return null;
  // null stands for a non-finite number in the core fields.
  for (const k of CORE) if (o[k] === null || o[k] === undefined) o[k] = NaN as unknown as Json;
  return o as unknown as TrainRecord;
}

/** Complete lines of the file with the byte offset where each starts; `end` is where complete lines end. */
function scanLines(bytes: Uint8Array): { lines: { start: number; text: string }[]; end: number } {
  const lines: { start: number; text: string }[] = [];
  const decoder = new TextDecoder();
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    lines.push({ start, text: decoder.decode(bytes.subarray(start, i)) });
    start = i + 1;
  }
  return { lines, end: start };
}

/**
 * Cuts the log after `step`: keeps the records up to the first one past `step` (or the first line
 * that is not a record, which only a crash leaves) and truncates the file there, in place.
 */
export function truncateTrainLog(file: string, step: number): { kept: number; dropped: number } {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kept: 0, dropped: 0 };
    throw new TrainLogError(`${file}: cannot read the training log (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const { lines, end } = scanLines(bytes);
  let cut = end;
  let kept = 0;
  for (const l of lines) {
    const r = l.text.trim() === '' ? null : parseRecord(l.text);
    if (!r || r.step > step) { cut = l.start; break; }
    kept++;
  }
  const dropped = lines.length - kept + (end < bytes.length ? 1 : 0);
  if (cut < bytes.length) fs.truncateSync(file, cut);
  return { kept, dropped };
}

export interface OpenOptions {
  /** The step training continues after: later records are removed. 0 (the default) starts a new log. */
  readonly resumeStep?: number;
}

export class TrainLog {
  private fd: number | null;
  private lastStep: number;

  private constructor(readonly file: string, fd: number, lastStep: number, readonly dropped: number) {
    this.fd = fd;
    this.lastStep = lastStep;
  }

  /** Opens `file` for appending after cutting it back to `resumeStep` (see truncateTrainLog). */
  static open(file: string, options: OpenOptions = {}): TrainLog {
    const resumeStep = options.resumeStep ?? 0;
    const { dropped } = truncateTrainLog(file, resumeStep);
    const records = readTrainLog(file);
    let fd: number;
    try {
      fd = fs.openSync(file, 'a');
    } catch (e) {
      throw new TrainLogError(`${file}: cannot open the training log (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return new TrainLog(file, fd, records.length ? records[records.length - 1].step : -Infinity, dropped);
  }

  /** Appends one record as one whole line. Steps must increase: a repeat would be a duplicate. */
  append(record: TrainRecord): void {
    if (this.fd === null) throw new TrainLogError(`${this.file}: the training log is closed`);
    if (!Number.isSafeInteger(record.step) || record.step <= this.lastStep) {
      throw new TrainLogError(`${this.file}: step ${record.step} does not follow step ${this.lastStep}`);
    }
    const bytes = Buffer.from(formatRecord(record));
    // One write call for the whole line; loop only if the kernel takes less.
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done);
    this.lastStep = record.step;
  }

  /** Flushes to disk: call when a checkpoint is saved, so the log reaches at least that step. */
  sync(): void {
    if (this.fd !== null) fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Every record of a log, in order. A torn last line (a crash mid-write) is ignored; a bad line
 * elsewhere is an error naming its line number. A missing file reads as no records.
 */
export function readTrainLog(file: string): TrainRecord[] {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new TrainLogError(`${file}: cannot read the training log (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const { lines } = scanLines(bytes);
  const out: TrainRecord[] = [];
  lines.forEach((l, i) => {
    if (l.text.trim() === '') return;
    const r = parseRecord(l.text);
    if (!r) throw new TrainLogError(`${file}:${i + 1}: not a training record: ${l.text.slice(0, 80)}`);
    out.push(r);
  });
  return out;
}
