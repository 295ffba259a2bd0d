// Compiles src/ to dist/ (JavaScript, tsconfig.build.json) so that the CLI starts without compiling
// TypeScript on the fly; copies the standard library and the worker entries beside it, and stamps
// the build with src/'s state (scripts/build-stamp.mjs). Type errors do not stop it: `npm run
// typecheck` reports those. Usage: node scripts/build.mjs [--if-stale]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFresh, treeStamp } from './build-stamp.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const [src, dist] = [path.join(root, 'src'), path.join(root, 'dist')];
if (process.argv.includes('--if-stale') && isFresh(src, dist)) process.exit(0);

const stamp = treeStamp(src);
fs.rmSync(dist, { recursive: true, force: true });
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
if (!fs.existsSync(tsc)) {
  console.error('build: typescript is not installed (npm ci installs it); the CLI runs through tsx meanwhile');
  process.exit(0);
}
spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'ignore' });
if (!fs.existsSync(path.join(dist, 'cli/main.js'))) {
  console.error('build: tsc wrote no dist/cli/main.js; the CLI runs through tsx');
  process.exit(0);
}
fs.cpSync(path.join(src, 'std'), path.join(dist, 'std'), { recursive: true });
// The worker entries register tsx and import their .ts module: in dist/ they import the .js one.
for (const worker of ['compiler/frontend/parse-worker.mjs', 'compiler/review/fmt-worker.mjs']) {
  const text = fs.readFileSync(path.join(src, worker), 'utf8');
  const module = /import\('\.\/([\w-]+)\.ts'\)/.exec(text)?.[1];
  if (!module) throw new Error(`build: ${worker} does not import a ./NAME.ts module`);
  fs.writeFileSync(path.join(dist, worker), `// Built from src/${worker}: the compiled module, without tsx.\nawait import('./${module}.js');\n`);
}
fs.writeFileSync(path.join(dist, 'build.json'), `${JSON.stringify(stamp)}\n`);
