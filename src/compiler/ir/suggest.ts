// "Did you mean ...?" hints by edit distance.

/** Edit distance where swapping two neighbouring letters counts as one edit ("vidoe" -> "video"). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * Whether a candidate is near enough to a name to be worth suggesting: within a third of the
 * longer name's length. Below 3 letters every name is one substitution from every other (`d` from
 * the axis `b`), so there only a change of case or one letter too many or too few counts (`hh`
 * for `h`).
 */
function nearEnough(name: string, candidate: string, distance: number): boolean {
  if (Math.min(name.length, candidate.length) < 3) return distance === 0 || (distance === 1 && name.length !== candidate.length);
  return distance <= Math.max(1, Math.floor(Math.max(name.length, candidate.length) / 3));
}

/** The closest candidate near enough to the name, if any. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === name) continue;
    // The length difference is a lower bound of the distance: most candidates end here, cheaply.
    if (!nearEnough(name, c, Math.abs(c.length - name.length))) continue;
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance && nearEnough(name, c, d)) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const c = closest(name, candidates);
  return c === undefined ? undefined : `did you mean '${c}'?`;
}
