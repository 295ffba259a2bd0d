#!/usr/bin/env node
// Entry point: the compiled CLI in dist/ when it is as new as src/ (scripts/build.mjs, run by the
// install step), else the TypeScript itself through tsx, so no build step stands between an edit
// and a result.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFresh } from '../scripts/build-stamp.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
if (process.env.VDM_NO_DIST !== '1' && isFresh(path.join(root, 'src'), path.join(root, 'dist'))) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
