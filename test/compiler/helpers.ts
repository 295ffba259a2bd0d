// Test helpers: check source text written to a fresh temporary folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { checkFile, type CheckResult } from '../../src/compiler/frontend/check.ts';
import { costsOf } from '../../src/compiler/ir/cost.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import type { Graph, GraphNode } from '../../src/compiler/ir/graph.ts';

const made: string[] = [];
// Every folder a suite writes is removed when its process ends.
process.on('exit', () => { for (const dir of made) fs.rmSync(dir, { recursive: true, force: true }); });

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-test-'));
  made.push(dir);
  return dir;
}

/** Writes files (name -> text) into a new folder and checks `main.vdm` (or `entry`). */
export function checkFiles(files: Record<string, string>, options: { dims?: Record<string, number>; entry?: string; root?: string } = {}): CheckResult & { dir: string } {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  const result = checkFile(path.join(dir, options.entry ?? 'main.vdm'), {
    dims: options.dims, root: options.root ? path.join(dir, options.root) : undefined,
  });
  return { ...result, dir };
}

export function check(text: string, dims?: Record<string, number>): CheckResult {
  return checkFiles({ 'main.vdm': text }, { dims });
}

export function codes(r: CheckResult): string[] {
  return r.diagnostics.map((d) => d.code);
}

/** Line and column of each diagnostic, as "CODE@LINE:COL". */
export function places(r: CheckResult): string[] {
  return r.diagnostics.map((d) => {
    if (!d.span) return `${d.code}@-`;
    const { line, col } = d.span.source.lineCol(d.span.start);
    return `${d.code}@${line}:${col}`;
  });
}

export function graphOf(text: string, dims?: Record<string, number>): Graph {
  const r = check(text, dims);
  assert.equal(r.diagnostics.map(formatDiagnostic), [], 'expected no diagnostics');
  assert.ok(r.graph, 'expected a graph');
  return r.graph!;
}

export function nodeAt(g: Graph, path: string, op?: string): GraphNode {
  const n = g.nodes.find((x) => x.path === path && (op === undefined || x.op === op));
  assert.ok(n, `no node with path ${path}${op ? ` and op ${op}` : ''}; paths: ${g.nodes.map((x) => x.path).join(', ')}`);
  return n!;
}

export function axesOf(n: GraphNode): string {
  return n.axes.map(([a, s]) => `${a}=${s}`).join(',');
}

export function paramPaths(g: Graph): string[] {
  return g.nodes.flatMap((n) => n.params.map((p) => p.path));
}

export function paramShape(g: Graph, path: string): number[] {
  for (const n of g.nodes) for (const p of n.params) if (p.path === path) return [...p.shape];
  throw new Error(`no parameter ${path}; have ${paramPaths(g).join(', ')}`);
}

export function totalParams(g: Graph): number {
  return g.nodes.reduce((s, n) => s + n.params.reduce((t, p) => t + p.shape.reduce((a, b) => a * b, 1), 0), 0);
}

/** A model around a body: dims b=2, c=8, t=4, h=8, w=8 and a video input x. */
export function model(body: string, head = '', dims = 'b = 2, c = 8, t = 4, h = 8, w = 8'): string {
  return `${head}\nmodel M {\n  dims ${dims}\n  input x : video[b, c, t, h, w]\n${body}\n}\n`;
}

/** A spec file's graph (no diagnostics allowed), its parameter counts by path, and the total. */
export function specParams(file: string, dims: Record<string, number> = {}): { graph: Graph; byPath: Map<string, number>; total: number } {
  const r = checkFile(file, { dims });
  assert.equal(r.diagnostics.map(formatDiagnostic), []);
  const graph = r.graph!;
  const byPath = new Map<string, number>();
  for (const n of graph.nodes) for (const p of n.params) byPath.set(p.path, p.shape.reduce((a, b) => a * b, 1));
  return { graph, byPath, total: costsOf(graph).params };
}
