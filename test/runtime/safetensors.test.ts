import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/runtime/half.ts';
import {
  parseSafetensors, readSafetensors, SafetensorsError, serializeSafetensors, writeSafetensors, type SafeTensor,
} from '../../src/runtime/safetensors.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-st-'));

/** Builds a file by hand: header JSON text (padded or not) followed by raw data bytes. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), lengthField?: bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function failure(bytes: Uint8Array): string {
  try { parseSafetensors(bytes, 'ckpt.safetensors'); } catch (e) {
    assert.instance(e, SafetensorsError);
    return (e as Error).message;
  }
  throw new Error('expected SafetensorsError');
}

test('round trip of every dtype through a file, with metadata', () => {
  const tensors: Record<string, SafeTensor> = {
    'w.f32': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -2, 3.25, 0, -0, 1e-30]) },
    'w.f16': { dtype: 'F16', shape: [4], data: Float32Array.from([1, -0.5, 65504, 2 ** -24]) },
    'w.bf16': { dtype: 'BF16', shape: [3], data: Float32Array.from([1, -3.5, 2 ** 100]) },
    'steps': { dtype: 'I64', shape: [3], data: BigInt64Array.from([0n, -1n, 2n ** 62n + 7n]) },
    'ids': { dtype: 'I32', shape: [2, 1], data: Int32Array.from([-2147483648, 2147483647]) },
    'empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  const file = path.join(dir, 'all.safetensors');
  writeSafetensors(file, tensors, { format: 'pt', step: '1200' });
  const back = readSafetensors(file);
  assert.equal(back.metadata, { format: 'pt', step: '1200' });
  assert.equal(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    assert.is(back.tensors[name].dtype, t.dtype, name);
    assert.equal(back.tensors[name].shape, t.shape, name);
    assert.equal([...back.tensors[name].data], [...t.data], name); // all values exactly representable
  }
  assert.instance(back.tensors.steps.data, BigInt64Array);
  assert.instance(back.tensors.ids.data, Int32Array);
  assert.instance(back.tensors['w.f16'].data, Float32Array);
  // The in-memory parser agrees with the file reader.
  assert.equal(parseSafetensors(fs.readFileSync(file)).tensors['w.bf16'].data, back.tensors['w.bf16'].data);
});

test('layout: u64 length, space-padded header aligned to 8, tensors sorted by name, data ends at EOF', () => {
  const bytes = serializeSafetensors({
    b: { dtype: 'F32', shape: [1], data: Float32Array.of(2) },
    a: { dtype: 'F16', shape: [3], data: Float32Array.of(1, 2, 3) },
  }, { note: 'x' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(n % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.ok(/^\{.*\} *$/.test(text), text);
  const header = JSON.parse(text);
  assert.equal(header.__metadata__, { note: 'x' });
  assert.equal(header.a.data_offsets, [0, 6]);
  assert.equal(header.b.data_offsets, [6, 10]);
  assert.is(bytes.length, 8 + n + 10);
  assert.is(new DataView(bytes.buffer).getUint16(8 + n, true), 0x3c00, 'F16 1.0 first, little-endian');
});

test('F16 rounds to nearest even, saturates to Infinity, keeps subnormals', () => {
  const r = (x: number) => f16BitsToF32(f32ToF16Bits(x));
  assert.is(r(1 + 2 ** -11), 1, 'tie goes to the even mantissa');
  assert.is(r(1 + 3 * 2 ** -11), 1 + 2 ** -9, 'tie goes up to the even mantissa');
  assert.is(r(1 + 2 ** -11 + 2 ** -20), 1 + 2 ** -10, 'above the tie rounds up');
  assert.is(r(0.1), 0.0999755859375);
  assert.is(r(65504), 65504);
  assert.is(r(65519), 65504, 'below the overflow midpoint');
  assert.is(r(65520), Infinity, 'the overflow midpoint rounds to Infinity');
  assert.is(r(-1e6), -Infinity);
  assert.is(r(2 ** -24), 2 ** -24, 'smallest subnormal');
  assert.is(r(2 ** -25), 0, 'half the smallest subnormal ties to zero');
  assert.is(r(3 * 2 ** -25), 2 ** -23, 'subnormal tie rounds to even');
  assert.is(r(2 ** -14 - 2 ** -25), 2 ** -14, 'rounding carries into the smallest normal');
  assert.is(Object.is(r(-0), -0), true);
  assert.ok(Number.isNaN(r(NaN)));
  assert.is(f32ToF16Bits(Infinity), 0x7c00);
});

test('BF16 rounds to nearest even on the upper 16 bits', () => {
  const r = (x: number) => bf16BitsToF32(f32ToBf16Bits(x));
  assert.is(r(1 + 2 ** -8), 1, 'tie to even (down)');
  assert.is(r(1 + 3 * 2 ** -8), 1 + 2 ** -6, 'tie to even (up)');
  assert.is(r(1 + 2 ** -8 + 2 ** -12), 1 + 2 ** -7);
  assert.is(r(3.14159265), 3.140625);
  assert.is(r(3.4e38), Infinity, 'beyond the largest BF16 rounds to Infinity');
  assert.is(r(-(2 ** 127)), -(2 ** 127));
  assert.ok(Number.isNaN(r(NaN)));
  const file = path.join(dir, 'bf16.safetensors');
  writeSafetensors(file, { x: { dtype: 'BF16', shape: [2], data: Float32Array.of(1 + 3 * 2 ** -8, 0.1) } });
  assert.equal([...readSafetensors(file).tensors.x.data], [1 + 2 ** -6, 0.10009765625]);
});

test('malformed files fail with a SafetensorsError naming the problem', () => {
  const good = serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } });
  assert.match(failure(good.subarray(0, 5)), /truncated: 5 bytes/);
  assert.match(failure(good.subarray(0, good.length - 3)), /need 8 data bytes but only 5/);
  assert.match(failure(rawFile('{}', new Uint8Array(0), 1000n)), /header length 1000 goes beyond the end of the file/);
  assert.match(failure(rawFile('{}', new Uint8Array(0), 2n ** 63n)), /goes beyond the end/);
  assert.match(failure(rawFile('{"a": {"dtype": "F32",')), /header is not valid JSON/);
  assert.match(failure(rawFile('[1, 2]')), /must be a JSON object/);
  const d8 = new Uint8Array(8);
  assert.match(failure(rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8)),
    /'b' \(bytes 4..8\) overlaps/);
  assert.match(failure(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8)), /gap in the data: bytes 0..4/);
  assert.match(failure(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', d8)), /4 bytes after the last tensor/);
  assert.match(failure(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}', d8)), /invalid data_offsets \[8,4\]/);
  assert.match(failure(rawFile('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', d8)), /spans 8 bytes but shape \[3\] of F32 needs 12/);
  assert.match(failure(rawFile('{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}', d8)), /unknown dtype "F64"/);
  assert.match(failure(rawFile('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', d8)), /invalid shape/);
  assert.match(failure(rawFile('{"__metadata__":{"n":3}}')), /__metadata__ value for 'n' must be a string/);
});

test('tensor names and metadata keys from the file are only keys: __proto__, toString; dtypes are own names only', () => {
  const tensors: Record<string, SafeTensor> = Object.fromEntries([
    ['__proto__', { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) }],
    ['toString', { dtype: 'F32', shape: [1], data: Float32Array.from([3]) }],
    ['constructor', { dtype: 'I32', shape: [1], data: Int32Array.from([4]) }],
  ]);
  const back = parseSafetensors(serializeSafetensors(tensors, Object.fromEntries([['__proto__', 'm']])));
  assert.equal(Object.keys(back.tensors).sort(), ['__proto__', 'constructor', 'toString']);
  assert.equal([...back.tensors.__proto__.data], [1, 2]);
  assert.equal([...(back.tensors['toString'] as SafeTensor).data], [3]);
  assert.is(back.metadata.__proto__, 'm');
  assert.is(back.tensors.valueOf, undefined, 'nothing inherited');
  const dtype = (d: string) => failure(rawFile(`{"x":{"dtype":"${d}","shape":[0],"data_offsets":[0,0]}}`));
  for (const d of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) assert.match(dtype(d), /unknown dtype/, d);
  assert.throws(() => serializeSafetensors({ x: { dtype: 'toString' as 'F32', shape: [0], data: new Float32Array(0) } }), /unknown dtype/);
});

test('a name the header gives twice is refused, not silently the last one', () => {
  const one = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
  const two = '{"dtype":"F32","shape":[1],"data_offsets":[4,8]}';
  assert.match(failure(rawFile(`{"w":${one},"w":${two}}`, new Uint8Array(8))), /names 'w' twice/);
  assert.match(failure(rawFile(`{"__proto__":${one}, "__proto__" :${two}}`, new Uint8Array(8))), /names '__proto__' twice/);
  // the same text nested or inside strings is no duplicate
  const nested = parseSafetensors(rawFile(`{"__metadata__":{"w":"{\\"w\\": 1, \\"w\\"}"},"w":${one}}`, new Uint8Array(4)));
  assert.equal(Object.keys(nested.tensors), ['w']);
});

test('files: a missing file and a truncated file on disk give clear errors', () => {
  assert.throws(() => readSafetensors(path.join(dir, 'nope.safetensors')), /cannot open \(ENOENT\)/);
  const file = path.join(dir, 'cut.safetensors');
  const good = serializeSafetensors({ a: { dtype: 'I64', shape: [4], data: new BigInt64Array(4) } });
  fs.writeFileSync(file, good.subarray(0, good.length - 1));
  assert.throws(() => readSafetensors(file), (e: Error) => e instanceof SafetensorsError && /truncated/.test(e.message));
});

test('writes are atomic and bad tensors are refused before touching the target', () => {
  const file = path.join(dir, 'ckpt.safetensors');
  writeSafetensors(file, { a: { dtype: 'F32', shape: [1], data: Float32Array.of(7) } });
  const before = fs.readFileSync(file);
  assert.throws(() => writeSafetensors(file, { a: { dtype: 'F32', shape: [3], data: Float32Array.of(1) } }), /shape \[3\] has 3 elements but the data has 1/);
  assert.throws(() => writeSafetensors(file, { a: { dtype: 'I64', shape: [1], data: Float32Array.of(1) } }), /I64 data must be a BigInt64Array/);
  assert.throws(() => writeSafetensors(file, { a: { dtype: 'U8' as 'F32', shape: [1], data: Float32Array.of(1) } }), /unknown dtype 'U8'/);
  assert.equal(fs.readFileSync(file), before, 'the old checkpoint is intact');
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left behind');
  assert.throws(() => writeSafetensors(path.join(dir, 'no-such-dir', 'x.safetensors'), {}), /cannot write checkpoint \(ENOENT\)/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
