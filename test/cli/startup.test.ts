// What `vdm check` loads before it runs: the modules reachable by static imports from the CLI's entry
// and the check command. The runtime (GPU, training, sampling, files), the pipeline past checking and
// the other commands are imported only by the commands that need them (main.ts): loading them was
// a third of the start-up time. (The primitives bring their kernel generators: one primitive, one module.)
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const src = path.resolve(import.meta.dirname, '../../src');
// `import x from '...'` and `export ... from '...'`, not `import type` (erased) nor `import('...')`.
const STATIC = /(?:^|\n)\s*(?:import|export)\s+(?!type\b)[^'";]*?from\s*'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'/g;

function staticClosure(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>(), packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const m of fs.readFileSync(path.join(src, file), 'utf8').matchAll(STATIC)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith('.')) visit(path.normalize(path.join(path.dirname(file), spec)));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  };
  entries.forEach(visit);
  return { files, packages };
}

test('vdm check loads the front end only: no runtime, no pipeline past checking, no other command', () => {
  const { files, packages } = staticClosure(['cli/main.ts', 'cli/check-command.ts']);
  assert.ok(files.has('compiler/frontend/check.ts'), 'the closure follows imports');
  const allowed = new Set(['runtime/files.ts', 'runtime/limits.ts']); // what main.ts reports errors with
  const heavy = [...files].filter((f) => (f.startsWith('runtime/') && !allowed.has(f)) || f.startsWith('interop/') || f === 'pipeline.ts'
    || /^cli\/(train|sample|eval|run|compile|info)-command\.ts$/.test(f));
  assert.equal(heavy, [], `statically imported on vdm check's path: ${heavy.join(', ')}`);
  assert.not.ok(packages.has('webgpu'), 'webgpu is imported on vdm check\'s path');
});

test('the check misses nothing it claims to catch: a static import of the pipeline shows', () => {
  const { files } = staticClosure(['cli/compile-command.ts']);
  assert.ok(files.has('pipeline.ts') && files.has('runtime/gpu.ts'));
});

test.run();
