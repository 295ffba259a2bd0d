// Semantic diff of two graphs: the spec pairs in test/diff/ (each with the parts of the JSON diff
// it must contain), DiT-S/2 -> DiT-B/2 totals, compressed paths. The command (exit codes, formats,
// git revisions, the git diff driver) is tested in test/cli/diff.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { checkFile } from '../src/compiler/frontend/check.ts';
import { diffGraphs } from '../src/compiler/review/diff.ts';
import { compressPaths } from '../src/compiler/review/diff-paths.ts';
import { renderMarkdown, renderText } from '../src/compiler/review/diff-render.ts';
import type { Graph } from '../src/compiler/ir/graph.ts';

const root = path.resolve(import.meta.dirname, '..');
const pairs = path.join(root, 'test/diff');

function graphOf(file: string): Graph {
  const r = checkFile(file);
  assert.ok(r.graph, `${file} checks: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return r.graph!;
}

/** `actual` contains `expected`: objects by the keys given, arrays element by element (same length). */
function assertContains(actual: unknown, expected: unknown, at: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${at}: expected a list, got ${JSON.stringify(actual)}`);
    assert.is(actual.length, expected.length, `${at}: ${JSON.stringify(actual)}`);
    expected.forEach((e, i) => assertContains(actual[i], e, `${at}[${i}]`));
  } else if (expected && typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object', `${at}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) assertContains((actual as Record<string, unknown>)[k], v, `${at}.${k}`);
  } else {
    assert.equal(actual, expected, at);
  }
}

test('spec pairs: each JSON diff contains what its expect.json says', () => {
  const names = fs.readdirSync(pairs).filter((n) => fs.existsSync(path.join(pairs, n, 'expect.json'))).sort();
  assert.ok(names.length >= 9, `only ${names.length} pairs`);
  for (const name of names) {
    const dir = path.join(pairs, name);
    const diff = diffGraphs(graphOf(path.join(dir, 'a.vdm')), graphOf(path.join(dir, 'b.vdm')), { a: 'a.vdm', b: 'b.vdm' });
    const json = JSON.parse(JSON.stringify(diff));
    assertContains(json, JSON.parse(fs.readFileSync(path.join(dir, 'expect.json'), 'utf8')), name);
  }
});

test('a spec compared with itself, or with its formatted self, is no change', () => {
  const dir = path.join(pairs, 'comment-only');
  const a = graphOf(path.join(dir, 'a.vdm'));
  const b = graphOf(path.join(dir, 'b.vdm'));
  assert.ok(diffGraphs(a, a, { a: 'x', b: 'x' }).same);
  const diff = diffGraphs(a, b, { a: 'a', b: 'b' });
  assert.ok(diff.same);
  assert.match(renderText(diff, false), /no change/);
  assert.match(renderMarkdown(diff), /No change in meaning/);
});

test('DiT-S/2 -> DiT-B/2 as Markdown: params ~32.9M -> ~130.3M, MACs ~6.06G -> ~23.0G', () => {
  const [a, b] = ['dit-s-2.vdm', 'dit-b-2.vdm'].map((f) => graphOf(path.join(root, 'specs', f)));
  const md = renderMarkdown(diffGraphs(a, b, { a: 'dit-s-2.vdm', b: 'dit-b-2.vdm' }));
  const params = /^\| params \| ([\d.]+)M \| ([\d.]+)M \| \+[\d.]+M \| \+[\d.]+% \|$/m.exec(md);
  const macs = /^\| MACs \| ([\d.]+)G \| ([\d.]+)G \|/m.exec(md);
  assert.ok(params && macs, md.slice(0, 600));
  assert.ok(Math.abs(Number(params![1]) - 32.9) < 0.06 && Math.abs(Number(params![2]) - 130.3) < 0.06, params![0]);
  assert.ok(Math.abs(Number(macs![1]) - 6.06) < 0.01 && Math.abs(Number(macs![2]) - 23.0) < 0.05, macs![0]);
  assert.match(md, /\| changed \| `blocks\.\{0-11\}\.attn` \(12x\) heads: 6 -> 12 \|/);
  assert.match(md, /^\|---\|---:\|---:\|---:\|---:\|$/m);
});

test('compressed paths: index runs, several loop levels, different changes kept apart', () => {
  const paths = ['s.0.b.0.x', 's.0.b.1.x', 's.1.b.0.x', 's.1.b.1.x', 'blocks.3', 'blocks.4', 'blocks.5', 'blocks.9', 'other.1'];
  const out = compressPaths(paths, (p) => p, (p) => (p === 'other.1' ? 'different' : 'same'), (m, p) => `${p}/${m.length}`);
  assert.equal(out, ['s.{0-1}.b.{0-1}.x/4', 'blocks.{3-5,9}/4', 'other.1/1']);
});

test.run();
