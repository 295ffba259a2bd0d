// The safetensors checkpoint format: an 8-byte little-endian u64 header length N, N bytes of JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}},
// then the tensor bytes; offsets are relative to the first byte after the header and the data
// ends exactly at the end of the file. Every structural rule is checked on read, so a damaged
// checkpoint fails with a message naming the problem rather than loading garbage.
import fs from 'node:fs';
import path from 'node:path';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './half.ts';

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export type SafeDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

const DTYPE_BYTES: Readonly<Record<SafeDtype, number>> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };
/** Own keys only: `"toString"` or `"__proto__"` is no dtype. */
const isDtype = (v: unknown): v is SafeDtype => typeof v === 'string' && Object.hasOwn(DTYPE_BYTES, v);

/**
 * An empty record for keys that come from a file or the user (tensor names, metadata keys): no
 * prototype, so `__proto__` or `toString` is a key like any other, never dropped or found inherited.
 */
export const emptyRecord = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

/** F16/BF16 are widened to Float32Array in memory; I64 is a BigInt64Array. */
export type SafeData = Float32Array | Int32Array | BigInt64Array;

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: SafeData;
}

export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

interface HeaderEntry {
  dtype: SafeDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Headers beyond this are refused (a corrupt length field would otherwise allocate gigabytes). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const elementCount = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Reads and checks the header length field; `fileBytes` is the whole file's size. */
function headerLength(first8: Uint8Array, fileBytes: number, where: string): number {
  if (fileBytes < 8) throw new SafetensorsError(`${where}: truncated: ${fileBytes} bytes, fewer than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileBytes - 8)) {
    throw new SafetensorsError(`${where}: header length ${n} goes beyond the end of the file (${fileBytes - 8} bytes follow the length field); the file is truncated or not safetensors`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`${where}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte maximum`);
  if (n < 2n) throw new SafetensorsError(`${where}: header length ${n} is too small for a JSON object`);
  return Number(n);
}

/**
 * The first key the header's top-level object names twice (JSON.parse would keep only the last),
 * else undefined. Scans the text: strings are read whole, nested values skipped by depth.
 */
function duplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return undefined;
}

/** Parses the JSON header and checks it against the `dataBytes` that follow it. */
function parseHeader(bytes: Uint8Array, dataBytes: number, where: string): { entries: Map<string, HeaderEntry>; metadata: Record<string, string> } {
  let json: unknown;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${where}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SafetensorsError(`${where}: header must be a JSON object`);
  const metadata: [string, string][] = [];
  const duplicate = duplicateKey(text);
  if (duplicate !== undefined) throw new SafetensorsError(`${where}: the header names '${duplicate}' twice; each tensor must have one name`);
  const entries = new Map<string, HeaderEntry>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError(`${where}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new SafetensorsError(`${where}: __metadata__ value for '${k}' must be a string`);
        metadata.push([k, v]);
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new SafetensorsError(`${where}: tensor '${name}' must be an object`);
    if (!isDtype(e.dtype)) {
      throw new SafetensorsError(`${where}: tensor '${name}' has unknown dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const isIndex = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (!Array.isArray(e.shape) || !e.shape.every(isIndex)) throw new SafetensorsError(`${where}: tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isIndex) || off[0] > off[1]) {
      throw new SafetensorsError(`${where}: tensor '${name}' has invalid data_offsets ${JSON.stringify(off)} (want [begin, end] with 0 <= begin <= end)`);
    }
    const dtype = e.dtype;
    const shape = e.shape as number[];
    const expected = elementCount(shape) * DTYPE_BYTES[dtype];
    if (off[1] - off[0] !== expected) {
      throw new SafetensorsError(`${where}: tensor '${name}' spans ${off[1] - off[0]} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${expected}`);
    }
    entries.set(name, { dtype, shape, begin: off[0], end: off[1] });
  }
  // The tensors must tile the data region exactly: no gaps, no overlaps, nothing after the last one.
  const sorted = [...entries.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  for (const [name, e] of sorted) {
    if (e.begin < cursor) throw new SafetensorsError(`${where}: tensor '${name}' (bytes ${e.begin}..${e.end}) overlaps the previous tensor, which ends at ${cursor}`);
    if (e.begin > cursor) throw new SafetensorsError(`${where}: gap in the data: bytes ${cursor}..${e.begin} belong to no tensor (before '${name}')`);
    cursor = e.end;
  }
  if (cursor > dataBytes) throw new SafetensorsError(`${where}: tensors need ${cursor} data bytes but only ${dataBytes} follow the header (truncated file)`);
  if (cursor < dataBytes) throw new SafetensorsError(`${where}: ${dataBytes - cursor} bytes after the last tensor (data ends at ${cursor}, file has ${dataBytes})`);
  return { entries, metadata: Object.fromEntries(metadata) }; // own keys, `__proto__` included
}

function decode(e: HeaderEntry, raw: Uint8Array): SafeData {
  // Copy into a fresh, aligned buffer: data offsets need not be multiples of the element size.
  // (new Uint8Array(view) copies; Buffer#slice would not.)
  const buf = new Uint8Array(raw).buffer;
  switch (e.dtype) {
    case 'F32': return new Float32Array(buf);
    case 'F16': return decodeF16(new Uint16Array(buf));
    case 'BF16': return decodeBf16(new Uint16Array(buf));
    case 'I32': return new Int32Array(buf);
    case 'I64': return new BigInt64Array(buf);
  }
}

/** Parses a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array, where = 'safetensors'): SafetensorsFile {
  const n = headerLength(bytes.subarray(0, 8), bytes.length, where);
  const { entries, metadata } = parseHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, where);
  const data = bytes.subarray(8 + n);
  const tensors = emptyRecord<SafeTensor>();
  for (const [name, e] of entries) tensors[name] = { dtype: e.dtype, shape: e.shape, data: decode(e, data.subarray(e.begin, e.end)) };
  return { tensors, metadata };
}

/** pread until `buf` is full: one readSync call moves at most 2 GiB. */
function readExactly(fd: number, buf: Uint8Array, position: number, where: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, Math.min(buf.length - done, 1 << 30), position + done);
    if (n === 0) throw new SafetensorsError(`${where}: file ended early at byte ${position + done} (was it modified while being read?)`);
    done += n;
  }
}

/**
 * Opens `file`, validates its header against the file size and hands the parsed entries to `read`
 * with the data's start offset; the file is closed however `read` ends.
 */
function withHeader<T>(file: string, read: (fd: number, entries: ReturnType<typeof parseHeader>['entries'],
  metadata: Record<string, string>, dataStart: number) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new SafetensorsError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const first8 = new Uint8Array(8);
    readExactly(fd, first8.subarray(0, Math.min(8, size)), 0, file);
    const n = headerLength(first8, size, file);
    const header = new Uint8Array(n);
    readExactly(fd, header, 8, file);
    const { entries, metadata } = parseHeader(header, size - 8 - n, file);
    return read(fd, entries, metadata, 8 + n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a checkpoint; the header is validated against the file size before the data is read. */
export function readSafetensors(file: string): SafetensorsFile {
  return withHeader(file, (fd, entries, metadata, start) => {
    const tensors = emptyRecord<SafeTensor>();
    for (const [name, e] of entries) {
      const raw = new Uint8Array(e.end - e.begin);
      readExactly(fd, raw, start + e.begin, file);
      tensors[name] = { dtype: e.dtype, shape: e.shape, data: decode(e, raw) };
    }
    return { tensors, metadata };
  });
}

/** A tensor's entry in the header, without its data. */
export interface SafeTensorInfo {
  dtype: SafeDtype;
  shape: number[];
}

/**
 * Reads and validates only the header (against the file's size): cheap even for a large file, and
 * enough to tell a truncated file or a torn header from a whole one.
 */
export function readSafetensorsHeader(file: string): { tensors: Record<string, SafeTensorInfo>; metadata: Record<string, string> } {
  return withHeader(file, (_fd, entries, metadata) => {
    const tensors = emptyRecord<SafeTensorInfo>();
    for (const [name, e] of entries) tensors[name] = { dtype: e.dtype, shape: e.shape };
    return { tensors, metadata };
  });
}

function encode(name: string, t: SafeTensor): Uint8Array {
  const { dtype, data } = t;
  if (!isDtype(dtype)) throw new SafetensorsError(`tensor '${name}': unknown dtype '${dtype}' (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(`tensor '${name}': invalid shape [${t.shape.join(', ')}]`);
  const count = elementCount(t.shape);
  if (data.length !== count) throw new SafetensorsError(`tensor '${name}': shape [${t.shape.join(', ')}] has ${count} elements but the data has ${data.length}`);
  const want = dtype === 'I64' ? BigInt64Array : dtype === 'I32' ? Int32Array : Float32Array;
  if (!(data instanceof want)) throw new SafetensorsError(`tensor '${name}': ${dtype} data must be a ${want.name}, got ${data.constructor.name}`);
  const typed = dtype === 'F16' ? encodeF16(data as Float32Array) : dtype === 'BF16' ? encodeBf16(data as Float32Array) : data;
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/**
 * The file as a list of byte blocks: length field and header first, then each tensor's bytes as a
 * view of its own array (no copy), so a large checkpoint is written without a second copy in memory.
 */
export function serializeSafetensorsParts(tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array[] {
  const names = Object.keys(tensors).sort();
  if (names.includes('__metadata__')) throw new SafetensorsError(`'__metadata__' is reserved and cannot name a tensor`);
  const header = emptyRecord<unknown>();
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new SafetensorsError(`metadata '${k}' must be a string`);
    header.__metadata__ = metadata;
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const blob = encode(name, tensors[name]);
    header[name] = { dtype: tensors[name].dtype, shape: tensors[name].shape, data_offsets: [offset, offset + blob.length] };
    blobs.push(blob);
    offset += blob.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // spaces keep the data 8-byte aligned
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  if (json.length > MAX_HEADER_BYTES) throw new SafetensorsError(`header of ${json.length} bytes exceeds the ${MAX_HEADER_BYTES}-byte maximum readers accept`);
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(json, 8);
  return [head, ...blobs];
}

/** Serializes tensors (sorted by name) and optional string metadata into safetensors bytes. */
export function serializeSafetensors(tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array {
  const parts = serializeSafetensorsParts(tensors, metadata);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Temporary files of `writeFileAtomic`: `.<name>.<pid>.<time>.tmp` beside the target. */
export const ATOMIC_TEMP = /^\.(.+)\.(\d+)\.(\d+)\.tmp$/;

/**
 * Writes a file atomically: the parts go to a temporary file in the same directory (a rename is
 * atomic only within one file system), which is fsynced and renamed over the target; then the
 * directory is fsynced so the rename itself survives a power cut. A killed process leaves either
 * the old file or the new one, and at worst a stray temporary file. Errors keep their `code`.
 */
export function writeFileAtomic(file: string, parts: readonly Uint8Array[]): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    for (const bytes of parts) {
      // One writeSync moves at most 2 GiB; loop on short writes.
      let written = 0;
      while (written < bytes.length) written += fs.writeSync(fd, bytes, written, Math.min(bytes.length - written, 1 << 30));
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    // Not every platform allows fsync on a directory.
    const dfd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* best effort */ }
}

/**
 * Writes a checkpoint atomically (see `writeFileAtomic`): a killed process leaves either the old
 * file or the new one. Bad tensors are refused before anything is written.
 */
export function writeSafetensors(file: string, tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): void {
  const parts = serializeSafetensorsParts(tensors, metadata);
  try {
    writeFileAtomic(file, parts);
  } catch (e) {
    throw new SafetensorsError(`${file}: cannot write checkpoint (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
