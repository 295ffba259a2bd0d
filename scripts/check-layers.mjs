// Checks the layering of src/: every relative import goes to the same layer or one below it, no
// folders import each other in a cycle, and no files do either (except the cycles allowed below,
// each named with its reason). Prints what is wrong and exits 1, or prints a one-line summary.
// Usage: node scripts/check-layers.mjs [--graph]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Bottom to top. A file belongs to the longest folder prefix listed; it may import its own layer or lower. */
export const LAYERS = [
  'compiler/ir',
  'codegen/kernels',
  'compiler/primitives',
  'compiler/frontend',
  'compiler/reference',
  'compiler/review',
  'codegen',
  'runtime',
  'interop',    // PyTorch checkpoints and modules: conversion by rule, name maps, export
  '.',          // the pipeline API: src/*.ts
  'cli',
];

/** File cycles that are allowed: an interpreter's own mutual recursion. */
export const ALLOWED_CYCLES = [
  // The elaborator: evaluating an expression may call a block, whose body is executed statement by
  // statement, whose statements evaluate expressions (and annotations and dims do the same).
  ['compiler/frontend/', ['annotation', 'axis-decls', 'calls', 'eval-expr', 'exec', 'model', 'operators']],
];

function listFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (/\.(ts|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

export function importGraph(src = path.join(root, 'src')) {
  const files = listFiles(src).map((f) => path.relative(src, f));
  const edges = new Map(files.map((f) => [f, new Set()]));
  for (const f of files) {
    const text = fs.readFileSync(path.join(src, f), 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec.startsWith('.')) continue;
      edges.get(f).add(path.normalize(path.join(path.dirname(f), spec)));
    }
  }
  return edges;
}

export const layerOf = (file) => {
  const dir = path.dirname(file);
  let best = -1;
  LAYERS.forEach((l, i) => {
    if (dir === l || dir.startsWith(l + '/') || (l === '.' && dir === '.')) {
      if (best < 0 || l.length > LAYERS[best].length) best = i;
    }
  });
  return best;
};

/** Strongly connected components with more than one member (Tarjan). */
function cycles(nodes, next) {
  let index = 0;
  const idx = new Map(), low = new Map(), stack = [], on = new Set(), out = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of next(v)) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do { w = stack.pop(); on.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return out;
}

export function checkLayers(src = path.join(root, 'src')) {
  const edges = importGraph(src);
  const problems = [];
  for (const [f, targets] of edges) {
    const lf = layerOf(f);
    if (lf < 0) problems.push(`${f}: in no layer (add its folder to LAYERS in scripts/check-layers.mjs)`);
    for (const t of targets) {
      if (!edges.has(t)) { problems.push(`${f}: imports ${t}, which does not exist`); continue; }
      const lt = layerOf(t);
      if (lt > lf) problems.push(`${f} (${LAYERS[lf]}) imports ${t} (${LAYERS[lt]}), a higher layer`);
    }
  }
  const folders = new Map();
  for (const [f, targets] of edges) {
    const d = path.dirname(f);
    if (!folders.has(d)) folders.set(d, new Set());
    for (const t of targets) if (path.dirname(t) !== d) folders.get(d).add(path.dirname(t));
  }
  for (const c of cycles([...folders.keys()], (d) => folders.get(d) ?? [])) {
    problems.push(`folders import each other in a cycle: ${c.join(', ')}`);
  }
  const allowed = (comp) => ALLOWED_CYCLES.some(([dir, names]) => comp.every((f) => {
    const base = path.basename(f).replace(/\.(ts|mjs)$/, '');
    return f.startsWith(dir) && names.includes(base);
  }));
  for (const c of cycles([...edges.keys()], (f) => [...(edges.get(f) ?? [])].filter((t) => edges.has(t)))) {
    if (!allowed(c)) problems.push(`files import each other in a cycle: ${c.join(', ')}`);
  }
  return { problems, files: edges.size, imports: [...edges.values()].reduce((n, s) => n + s.size, 0) };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { problems, files, imports } = checkLayers();
  for (const p of problems) console.error(p);
  if (problems.length) process.exit(1);
  console.log(`layers: ${files} files, ${imports} imports, no upward import, no cycle`);
}
