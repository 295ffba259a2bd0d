// Dotted parameter paths. Every parametric call gets a segment: its `as` name, else its op/block
// name, with _1, _2, ... for later parametric calls of the same name in the same scope. Loops add
// `<name>.<i>` (default name "layers"); when one iteration makes exactly one parametric call and it
// has no `as`, that call's segment is left out (blocks.3.attn..., as in a PyTorch ModuleList).
// Whether a block call makes parameters is known only after it ran, so paths are assigned at the end.

export type EntryKind = 'op' | 'block' | 'loop';

export class NameEntry {
  path = '';
  readonly children: NameScope | null;
  readonly iterations: NameScope[] | null;
  /** A shared primitive (`proj = linear as proj`): its one layer's segment is left out (proj.weight). */
  omitSingle = false;
  /** A later call of a shared module: its display name differs from the scope's parametric ones too. */
  distinct = false;
  private parametric: boolean | null = null;

  constructor(
    readonly kind: EntryKind,
    readonly base: string,
    readonly explicit: boolean,
    /** Parameters created directly by this entry (ops only). */
    readonly paramCount: number,
  ) {
    this.children = kind === 'block' ? new NameScope() : null;
    this.iterations = kind === 'loop' ? [] : null;
  }

  hasParams(): boolean {
    if (this.parametric === null) {
      if (this.kind === 'op') this.parametric = this.paramCount > 0;
      else if (this.kind === 'block') this.parametric = this.children!.hasParams();
      else this.parametric = this.iterations!.some((s) => s.hasParams());
    }
    return this.parametric;
  }
}

export class NameScope {
  readonly entries: NameEntry[] = [];
  /** The scope's own path, set by assignPaths (nodes without an entry hang their op name on it). */
  path = '';
  private opCounts: Map<string, number> | null = null;

  /** A display path for a node without parameters or `as` name: the op name, numbered in call order. */
  opPath(op: string): string {
    this.opCounts ??= new Map();
    const n = this.opCounts.get(op) ?? 0;
    this.opCounts.set(op, n + 1);
    const name = n === 0 ? op : `${op}_${n}`;
    return this.path ? `${this.path}.${name}` : name;
  }

  add(kind: EntryKind, base: string, explicit: boolean, paramCount = 0): NameEntry {
    const e = new NameEntry(kind, base, explicit, paramCount);
    this.entries.push(e);
    return e;
  }

  hasParams(): boolean {
    return this.entries.some((e) => e.hasParams());
  }
}

const join = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

/** Picks `base`, else base_1, base_2, ... not yet used in this scope. */
function unique(base: string, used: Map<string, number>, taken: Set<string>): string {
  let n = used.get(base) ?? 0;
  let name = n === 0 ? base : `${base}_${n}`;
  while (taken.has(name)) {
    n++;
    name = `${base}_${n}`;
  }
  used.set(base, n + 1);
  taken.add(name);
  return name;
}

/** Assigns `path` to every entry under `scope`. Entries without parameters get display paths only. */
export function assignPaths(scope: NameScope, prefix: string, omitSingle = false): void {
  scope.path = prefix;
  const parametric = scope.entries.filter((e) => e.hasParams());
  const omitted = omitSingle && parametric.length === 1 && !parametric[0].explicit && parametric[0].kind !== 'loop'
    ? parametric[0] : null;
  const paramUsed = new Map<string, number>();
  const paramTaken = new Set<string>();
  const otherUsed = new Map<string, number>();
  const otherTaken = new Set<string>();
  for (const e of scope.entries) {
    if (e === omitted) e.path = prefix;
    else if (e.hasParams()) e.path = join(prefix, unique(e.base, paramUsed, paramTaken));
  }
  for (const e of scope.entries) {
    if (e === omitted || e.hasParams()) continue;
    const name = unique(e.base, otherUsed, e.distinct ? new Set([...otherTaken, ...paramTaken]) : otherTaken);
    otherTaken.add(name);
    e.path = join(prefix, name);
  }
  for (const e of scope.entries) {
    if (e.children) assignPaths(e.children, e.path, e.omitSingle);
    if (e.iterations) e.iterations.forEach((it, i) => assignPaths(it, join(e.path, String(i)), true));
  }
}
