// DiT parameter and MAC counts: a fixture written with primitives only must match hand formulas
// exactly; the specs/dit-*.vdm files (standard library) must match the DiT paper's figures.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { costsOf } from '../../src/compiler/ir/cost.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const fixture = path.join(here, 'fixtures/dit.vdm');

const CONFIGS = {
  'S/2': { hidden: 384, depth: 12, heads: 6, params: 32.9e6, macs: 6.06e9 },
  'B/2': { hidden: 768, depth: 12, heads: 12, params: 130.3e6, macs: 23.0e9 },
  'L/2': { hidden: 1024, depth: 24, heads: 16, params: 457.8e6, macs: 80.7e9 },
  'XL/2': { hidden: 1152, depth: 28, heads: 16, params: 675.1e6, macs: 118.6e9 },
} as const;

/** DiT with 4 latent channels, patch 2 on 32x32 (256 tokens), learned sigma, 1000 classes + null, no position table. */
function expectedParams(d: number, depth: number): number {
  const embedders = (4 * d * 4 + d) + (256 * d + d + d * d + d) + 1001 * d;
  const block = 18 * d * d + 15 * d;
  const final = (d * 2 * d + 2 * d) + (d * 32 + 32);
  return embedders + depth * block + final;
}

function expectedMacs(d: number, depth: number): number {
  const N = 256;
  const block = 6 * d * d + N * (12 * d * d + 2 * N * d);
  return N * d * 16 + 256 * d + d * d + depth * block + 2 * d * d + N * d * 32;
}

function costs(file: string, dims: Record<string, number> = {}) {
  const r = checkFile(file, { dims });
  assert.equal(r.diagnostics.map(formatDiagnostic), []);
  return costsOf(r.graph!);
}

for (const [name, c] of Object.entries(CONFIGS)) {
  test(`fixture DiT-${name}: exact parameters and MACs by hand formula`, () => {
    const got = costs(fixture, { hidden: c.hidden, depth: c.depth, heads: c.heads });
    assert.is(got.params, expectedParams(c.hidden, c.depth));
    assert.is(got.macs, expectedMacs(c.hidden, c.depth));
    assert.is(got.flops, 2 * got.macs);
  });
}

test('fixture DiT-XL/2 without the fixed position table: 674,834,720 parameters, 118.6G MACs', () => {
  const got = costs(fixture);
  assert.is(got.params, 674_834_720);
  assert.is(got.macs, 118_621_421_568);
});

for (const [name, c] of Object.entries(CONFIGS)) {
  const file = path.join(repo, `specs/dit-${name.toLowerCase().replace('/', '-')}.vdm`);
  test(`specs/${path.basename(file)} matches the DiT paper: ${c.params / 1e6}M parameters, ${c.macs / 1e9}G MACs`, () => {
    assert.ok(fs.existsSync(file), `${file} is missing`);
    const got = costs(file);
    assert.ok(Math.abs(got.params / c.params - 1) < 0.005, `params ${got.params}`);
    assert.ok(Math.abs(got.macs / c.macs - 1) < 0.01, `MACs ${got.macs}`);
  });
}

test.run();
