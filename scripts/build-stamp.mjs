// Whether dist/ (compiled JavaScript, scripts/build.mjs) is as new as src/: bin/vdm.mjs runs the
// compiled CLI when it is, and the TypeScript through tsx when it is not (an edit since the build).
import fs from 'node:fs';
import path from 'node:path';

/** The newest modification time and the number of the files under `dir`. */
export function treeStamp(dir) {
  let newest = 0;
  let files = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) { newest = Math.max(newest, fs.statSync(p).mtimeMs); files++; }
    }
  };
  walk(dir);
  return { newest, files };
}

/** True when `dist` holds a build of `src` as it is now (same files, none modified since). */
export function isFresh(src, dist) {
  try {
    const built = JSON.parse(fs.readFileSync(path.join(dist, 'build.json'), 'utf8'));
    const now = treeStamp(src);
    return built.newest === now.newest && built.files === now.files;
  } catch {
    return false;
  }
}
