// vdm's on-disk caches (parsed trees, the compiled grammar) live in a folder of the user's own
// ($VDM_CACHE_DIR, else $XDG_CACHE_HOME/vdm, else ~/.cache/vdm), created with mode 0700 and used
// only while it is a real folder owned by this user and closed to others. Each entry carries its
// key and a digest of its payload and is checked on reading: an entry that does not match is
// ignored (and rewritten by the caller). Entries are written to a fresh temporary file created
// exclusively without following links, then renamed into place, so no one can plant a file or a
// link for vdm to write through, and a reader never sees half an entry.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Larger entries are not cached (nor read back). */
const MAX_ENTRY = 64 * 1024 * 1024;
const ENVELOPE = 'vdm-cache-1';

let checked: { dir: string; ok: boolean } | null = null;

/** The cache folder the environment names, before any check. */
export function userCacheDir(): string {
  if (process.env.VDM_CACHE_DIR) return path.resolve(process.env.VDM_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'vdm');
}

/** The folder `sub` of the cache, made safe to use; null when it cannot be (then nothing is cached). */
export function cacheFolder(sub: string): string | null {
  const dir = path.join(userCacheDir(), sub);
  if (checked?.dir === dir) return checked.ok ? dir : null;
  let ok = false;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    const uid = process.getuid?.();
    if (st.isDirectory() && !st.isSymbolicLink() && (uid === undefined || st.uid === uid)) {
      if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
      ok = (fs.lstatSync(dir).mode & 0o077) === 0 || process.platform === 'win32';
    }
  } catch {
    ok = false;
  }
  checked = { dir, ok };
  return ok ? dir : null;
}

const digestOf = (key: string, payload: string) => crypto.createHash('sha256').update(`${ENVELOPE}\0${key}\0`).update(payload).digest('hex');

/** The payload stored under `key` in `sub`, or null: missing, unreadable, not ours, or not matching. */
export function readEntry(sub: string, key: string): string | null {
  const dir = cacheFolder(sub);
  if (!dir) return null;
  const file = path.join(dir, `${key}.json`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile() || st.size > MAX_ENTRY || (uid !== undefined && st.uid !== uid)) return null;
    const entry = JSON.parse(fs.readFileSync(fd, 'utf8')) as { envelope?: unknown; key?: unknown; digest?: unknown; payload?: unknown };
    if (entry.envelope !== ENVELOPE || entry.key !== key || typeof entry.payload !== 'string') return null;
    if (entry.digest !== digestOf(key, entry.payload)) return null;
    const now = new Date();
    fs.futimesSync(fd, now, now); // recently used: pruned last
    return entry.payload;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Stores `payload` under `key` in `sub`; failures only cost speed. */
export function writeEntry(sub: string, key: string, payload: string): void {
  const dir = cacheFolder(sub);
  if (!dir) return;
  const body = JSON.stringify({ envelope: ENVELOPE, key, digest: digestOf(key, payload), payload });
  if (body.length > MAX_ENTRY) return;
  const temp = path.join(dir, `.${key}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    fs.writeFileSync(fd, body);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(temp, path.join(dir, `${key}.json`));
  } catch {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
  }
}

/** Drops the least recently used entries of `sub` once it holds more than `most`, keeping `keep`. */
export function pruneEntries(sub: string, most: number, keep: number): void {
  const dir = cacheFolder(sub);
  if (!dir) return;
  try {
    const names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
    if (names.length <= most) return;
    const aged = names.map((n) => {
      try {
        return { n, t: fs.lstatSync(path.join(dir, n)).mtimeMs };
      } catch {
        return { n, t: 0 };
      }
    }).sort((a, b) => a.t - b.t);
    for (const { n } of aged.slice(0, aged.length - keep)) fs.rmSync(path.join(dir, n), { force: true });
  } catch {
    // Pruning is housekeeping.
  }
}
