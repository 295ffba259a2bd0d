// Dotted-path helpers for `vdm diff`: module prefixes, and compression of repeated changes
// (blocks.0.attn ... blocks.11.attn, all changed the same way, read as blocks.{0-11}.attn).

/** Every proper and improper prefix of a dotted path: a.b.c -> a, a.b, a.b.c. */
export function prefixes(path: string): string[] {
  const segs = path.split('.');
  return segs.map((_, i) => segs.slice(0, i + 1).join('.'));
}

export function parentOf(path: string): string {
  const at = path.lastIndexOf('.');
  return at < 0 ? '' : path.slice(0, at);
}

/** `{0-3,7}` for a set of indices. */
function showIndices(xs: readonly number[]): string {
  if (xs.length === 1) return String(xs[0]);
  const sorted = [...new Set(xs)].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    runs.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return `{${runs.join(',')}}`;
}

type Seg = string | number[];

/**
 * Groups items whose paths differ only in numeric segments and whose `key` is equal, one numeric
 * position at a time (last first), so blocks.{0-3}.mlp and stages.{0-1}.blocks.{0-2} both form.
 * `merge` receives the members of each group and the compressed path. Order: first appearance.
 */
export function compressPaths<T, R>(items: readonly T[], path: (t: T) => string, key: (t: T) => string,
  merge: (members: T[], path: string) => R): R[] {
  interface Group { segs: Seg[]; members: T[]; key: string; order: number }
  let groups: Group[] = items.map((t, order) => ({
    segs: path(t).split('.').map((s) => (/^\d+$/.test(s) ? [Number(s)] : s)),
    members: [t], key: key(t), order,
  }));
  const width = Math.max(0, ...groups.map((g) => g.segs.length));
  for (let p = width - 1; p >= 0; p--) {
    const byKey = new Map<string, Group>();
    const next: Group[] = [];
    for (const g of groups) {
      if (!Array.isArray(g.segs[p])) { next.push(g); continue; }
      const shape = g.segs.map((s, i) => (i === p ? '#' : Array.isArray(s) ? `[${s.join(',')}]` : s)).join('.');
      const k = `${shape}|${g.key}`;
      const seen = byKey.get(k);
      if (seen) {
        seen.segs[p] = [...(seen.segs[p] as number[]), ...(g.segs[p] as number[])];
        seen.members.push(...g.members);
      } else {
        const copy: Group = { ...g, segs: [...g.segs], members: [...g.members] };
        byKey.set(k, copy);
        next.push(copy);
      }
    }
    groups = next;
  }
  return groups
    .sort((a, b) => a.order - b.order)
    .map((g) => merge(g.members, g.segs.map((s) => (Array.isArray(s) ? showIndices(s) : s)).join('.')));
}
