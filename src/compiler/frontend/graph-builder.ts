// Collects graph nodes during elaboration under the node budget, then produces the frozen IR.
import { fail, diag } from '../ir/diagnostics.ts';
import type { Graph, GraphInput, GraphNode, GraphParam } from '../ir/graph.ts';
import { deepFreeze, paramLeaf } from '../ir/graph.ts';
import { Abort, LIMITS } from './limits.ts';
import { assignPaths, NameScope, type NameEntry } from './naming.ts';
import type { Json } from '../ir/json.ts';
import type { ParamShape } from '../primitives/types.ts';
import { locationOf, type Location, type Span } from '../ir/source.ts';
import { numel, type Axis, type DType } from '../ir/values.ts';
import type { DiffusionSpec } from '../ir/diffusion-spec.ts';

export interface NodeDraft {
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: Readonly<Record<string, Json>>;
  readonly axes: readonly Axis[];
  readonly dtype: DType;
  readonly params: readonly ParamShape[];
  readonly macs: number;
  readonly span: Span;
  /** Where the node's path comes from: its naming entry (parametric or `as`-named calls), */
  readonly entry: NameEntry | null;
  /** else the scope it was made in (path: scope path + op name), else a fixed path (inputs). */
  readonly scope?: NameScope;
  readonly path?: string;
  /** A later call of a shared module: the earlier node whose parameters this one reads. */
  readonly tie?: number;
}

export class GraphBuilder {
  readonly root = new NameScope();
  private readonly drafts: NodeDraft[] = [];
  /** One shared array per distinct shape: a graph repeats few shapes many times. */
  private readonly shapes = new Map<string, readonly Axis[]>();

  private intern(axes: readonly Axis[]): readonly Axis[] {
    let key = '';
    for (const [n, s] of axes) key += `${n}=${s},`;
    const known = this.shapes.get(key);
    if (known) return known;
    const frozen = Object.freeze(axes.map(([n, s]) => Object.freeze([n, s] as const)));
    this.shapes.set(key, frozen);
    return frozen;
  }

  nodeAxes(id: number): readonly Axis[] {
    return this.drafts[id].axes;
  }

  /** Names of the model inputs that some node in `outputs` depends on. */
  inputsReaching(outputs: readonly number[]): Set<string> {
    const seen = new Set<number>();
    const names = new Set<string>();
    const stack = [...outputs];
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const d = this.drafts[id];
      if (d.op === 'input') names.add(String(d.attrs.name));
      stack.push(...d.inputs);
    }
    return names;
  }

  get size(): number {
    return this.drafts.length;
  }

  /** Adds a node after checking its sizes (VDM035/VDM041) and the node budget (VDM043). */
  add(draft: NodeDraft): number {
    let elements = 1;
    for (const [name, size] of draft.axes) {
      if (!Number.isInteger(size) || size <= 0) fail('VDM035', draft.span, `axis '${name}' would have size ${size}`);
      if (size > LIMITS.size) fail('VDM041', draft.span, `axis '${name}' would have size ${size}, over the limit of 2^31`);
      elements *= size;
    }
    if (elements > LIMITS.elements) {
      fail('VDM041', draft.span, `this tensor would have ${elements} elements, over the limit of 2^40`);
    }
    if (this.drafts.length >= LIMITS.nodes) {
      throw new Abort(diag('VDM043', draft.span, `the graph grows past ${LIMITS.nodes} nodes`,
        'a loop or recursion is probably far larger than intended'));
    }
    this.drafts.push({
      op: draft.op, inputs: draft.inputs, attrs: draft.attrs, axes: this.intern(draft.axes), dtype: draft.dtype,
      params: draft.params, macs: draft.macs, span: draft.span, entry: draft.entry, scope: draft.scope, path: draft.path,
      tie: draft.tie,
    });
    return this.drafts.length - 1;
  }

  finish(header: {
    model: string; file: string; dims: Record<string, number>; inputs: GraphInput[];
    outputs: { name: string; node: number }[]; diffusion: DiffusionSpec | null;
  }): Graph {
    assignPaths(this.root, '');
    const seen = new Set<string>();
    // Nodes made by one call site in a loop share its span: compute each location once.
    const locations = new Map<Span, Location>();
    const locate = (span: Span) => {
      let at = locations.get(span);
      if (!at) locations.set(span, (at = locationOf(span)));
      return at;
    };
    const nodes: GraphNode[] = [];
    this.drafts.forEach((d, id) => {
      const path = d.path ?? d.entry?.path ?? d.scope?.opPath(d.op) ?? d.op;
      const params: GraphParam[] = d.params.map((p) => {
        const full = path ? `${path}.${p.leaf}` : p.leaf;
        if (seen.has(full)) throw new Error(`two parameters got the path '${full}'`);
        seen.add(full);
        return { path: full, shape: [...p.shape], init: p.init };
      });
      const owner = d.tie === undefined ? undefined : nodes[d.tie];
      nodes.push({
        id, op: d.op, path, inputs: d.inputs, attrs: d.attrs, axes: d.axes,
        dtype: d.dtype, params, macs: d.macs, activationBytes: numel(d.axes) * 4, span: locate(d.span),
        ...(owner ? { shares: owner.params.map((p) => ({ leaf: paramLeaf(owner, p), path: p.path })) } : {}),
      });
    });
    return deepFreeze({ ...header, nodes });
  }
}
