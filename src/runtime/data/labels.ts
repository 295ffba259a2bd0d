// labels.csv beside the videos: one line per clip, `file,label[,speed]`, with an optional header
// line naming the columns (`file,label,speed` in any order; then label may be left out).
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { DataError } from './errors.ts';

export const LABELS_FILE = 'labels.csv';

export interface LabelRow {
  readonly label?: number;
  readonly speed?: number;
  readonly line: number;
}

export interface Labels {
  /** By clip name (a file name, or a frame folder's name). */
  readonly rows: ReadonlyMap<string, LabelRow>;
  /** Rows that are wrong: keyed by the clip they name when they name one. */
  readonly problems: readonly { readonly name: string | null; readonly error: DataError }[];
}

/** `./a.gif`, `a.gif`, `clip1/` and `clip1` name the same clip. */
export function clipName(cell: string): string {
  return cell.replace(/\\/g, '/').replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

interface Needs {
  readonly classes?: number;
  readonly range?: readonly [number, number];
}

/** Reads labels.csv; `clips` are the names in the folder, `dir` prefixes names in messages. */
export function readLabels(file: string, dir: string, clips: ReadonlySet<string>, needs: Needs): Labels {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(fs.readFileSync(file), { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true }) as never;
  } catch (err) {
    throw new DataError(file, `is not valid CSV (${err instanceof Error ? err.message : String(err)})`, 'write one line per clip: file,label[,speed]', false);
  }
  let cols = { file: 0, label: 1, speed: 2 };
  if (records.length > 0 && records[0].record[0]?.toLowerCase() === 'file') {
    const names = records.shift()!.record.map((c) => c.toLowerCase());
    cols = { file: 0, label: names.indexOf('label'), speed: names.indexOf('speed') };
  }
  const rows = new Map<string, LabelRow>();
  const problems: { name: string | null; error: DataError }[] = [];
  for (const { record, info } of records) {
    const line = info.lines;
    const name = clipName(record[cols.file] ?? '');
    const at = `${LABELS_FILE} line ${line}`;
    const bad = (problem: string, fix: string) => problems.push({ name, error: new DataError(path.join(dir, name), problem, fix) });
    if (!clips.has(name)) {
      problems.push({ name: null, error: new DataError(`${file}:${line}`, `names "${name}", which is not a clip in the folder`, 'fix the name or remove the line') });
      continue;
    }
    const prev = rows.get(name);
    if (prev) { bad(`is listed twice in ${LABELS_FILE} (lines ${prev.line} and ${line})`, 'keep one line per clip'); continue; }
    const labelCell = cols.label >= 0 ? record[cols.label] ?? '' : '';
    const speedCell = cols.speed >= 0 ? record[cols.speed] ?? '' : '';
    let label: number | undefined;
    let speed: number | undefined;
    if (labelCell !== '') {
      if (!/^[+-]?\d+$/.test(labelCell)) { bad(`label "${labelCell}" (${at}) is not a whole number`, `write a class number from 0 to ${(needs.classes ?? 1) - 1}`); continue; }
      label = Number(labelCell);
      if (needs.classes !== undefined && (label < 0 || label >= needs.classes)) {
        bad(`label ${label} (${at}) is outside the model's ${needs.classes} classes (0 to ${needs.classes - 1})`, `fix ${LABELS_FILE}, or raise \`classes\` in the spec's label input`);
        continue;
      }
    }
    if (speedCell !== '') {
      speed = Number(speedCell);
      if (!Number.isFinite(speed)) { bad(`speed "${speedCell}" (${at}) is not a number`, 'write a number in the third column'); continue; }
      const r = needs.range;
      if (r && (speed < r[0] || speed > r[1])) { bad(`speed ${speed} (${at}) is outside the model's range ${r[0]} to ${r[1]}`, `fix ${LABELS_FILE}, or widen the spec's \`range\``); continue; }
    }
    rows.set(name, { label, speed, line });
  }
  return { rows, problems };
}
