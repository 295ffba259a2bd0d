// The layering of src/ (scripts/check-layers.mjs): imports go down or sideways only, and neither
// folders nor files import each other in a cycle. The checker itself is tested on a small tree
// with each kind of fault, so a broken checker cannot pass silently.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
// @ts-expect-error: a plain .mjs script without type declarations
import { checkLayers } from '../scripts/check-layers.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
type Report = { problems: string[]; files: number; imports: number };
const check = checkLayers as (src?: string) => Report;

test('src/ imports only downward, with no cycle between folders or files', () => {
  const { problems, files } = check();
  assert.ok(files > 100, `read ${files} files`);
  assert.equal(problems, []);
});

test('no test imports from src/cli except the CLI tests', () => {
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ts$/.test(e.name) && !path.relative(root, p).startsWith('test/cli/')) {
        if (/from\s+['"][./]+src\/cli\//.test(fs.readFileSync(p, 'utf8'))) offenders.push(path.relative(root, p));
      }
    }
  };
  walk(path.join(root, 'test'));
  walk(path.join(root, 'bench'));
  assert.equal(offenders, []);
});

test('the checker finds an upward import, a folder cycle and a file cycle', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-layers-'));
  const put = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  try {
    put('compiler/ir/graph.ts', "import { x } from '../../runtime/gpu.ts';\nexport const g = x;\n");
    put('runtime/gpu.ts', "import { g } from '../compiler/ir/graph.ts';\nexport const x = 1;\n");
    put('codegen/kernels/a.ts', "import { b } from './b.ts';\nexport const a = b;\n");
    put('codegen/kernels/b.ts', "import type { a } from './a.ts';\nexport const b = 2;\n");
    put('cli/main.ts', "import { a } from '../codegen/kernels/a.ts';\n");
    const { problems } = check(dir);
    assert.ok(problems.some((p) => p.startsWith('compiler/ir/graph.ts (compiler/ir) imports runtime/gpu.ts')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('folders import each other in a cycle: compiler/ir, runtime')), problems.join('\n'));
    assert.ok(problems.some((p) => p === 'files import each other in a cycle: codegen/kernels/a.ts, codegen/kernels/b.ts'), problems.join('\n'));
    assert.not.ok(problems.some((p) => p.includes('cli/main.ts')), 'a downward import is fine');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
