// bin/vdm.mjs runs the compiled CLI only while dist/ is a build of src/ as it is now.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
// @ts-expect-error: a plain .mjs script without types
import { isFresh, treeStamp } from '../../scripts/build-stamp.mjs';
import { tempDir } from '../compiler/helpers.ts';

test('a build is fresh until a source file is edited, added or removed', () => {
  const dir = tempDir();
  const [src, dist] = [path.join(dir, 'src'), path.join(dir, 'dist')];
  fs.mkdirSync(path.join(src, 'cli'), { recursive: true });
  fs.writeFileSync(path.join(src, 'cli/main.ts'), 'export {};\n');
  fs.writeFileSync(path.join(src, 'a.ts'), 'export const a = 1;\n');
  assert.not.ok(isFresh(src, dist), 'no build yet');
  fs.mkdirSync(dist);
  const stamp = () => fs.writeFileSync(path.join(dist, 'build.json'), JSON.stringify(treeStamp(src)));
  stamp();
  assert.ok(isFresh(src, dist));
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(src, 'a.ts'), later, later);
  assert.not.ok(isFresh(src, dist), 'an edited file');
  stamp();
  fs.writeFileSync(path.join(src, 'b.ts'), '');
  fs.utimesSync(path.join(src, 'b.ts'), new Date(0), new Date(0));
  assert.not.ok(isFresh(src, dist), 'an added file, however old');
  fs.rmSync(path.join(src, 'b.ts'));
  assert.ok(isFresh(src, dist));
  fs.writeFileSync(path.join(dist, 'build.json'), 'not json');
  assert.not.ok(isFresh(src, dist), 'an unreadable stamp');
});

test.run();
