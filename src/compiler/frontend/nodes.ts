// Turns a primitive's result into graph nodes and the value the program sees.
import type { Name } from './ast.ts';
import type { Elaboration } from './context.ts';
import { fail } from '../ir/diagnostics.ts';
import type { PrimitiveResult } from '../primitives/types.ts';
import type { Span } from '../ir/source.ts';
import { tuple, type TensorValue, type Value } from '../ir/values.ts';

const NO_PARAMS: readonly never[] = Object.freeze([]);

export function addNodes(ctx: Elaboration, op: string, result: PrimitiveResult, span: Span, naming: Name | null): Value {
  const graph = ctx.graph;
  if (!graph) fail('VDM019', span, 'tensors exist only inside a model (or blocks it calls), not in a top-level let');
  // Only calls that make parameters or carry an `as` name take part in parameter naming.
  const named = naming !== null || result.params.length > 0;
  const entry = named ? ctx.naming.add('op', naming?.name ?? op, naming !== null, result.params.length) : null;
  const scope = named ? undefined : ctx.naming;
  const inputs = result.inputs.map((t) => t.node);
  const values: TensorValue[] = result.outputs.map((out, i) => {
    const node = graph.add({
      op, inputs, attrs: out.attrs ? { ...result.attrs, ...out.attrs } : result.attrs, axes: out.axes, dtype: out.dtype,
      // A multi-output primitive owns its parameters and MACs once, on its first node.
      params: i === 0 ? result.params : NO_PARAMS, macs: i === 0 ? result.macs : 0, span, entry, scope,
    });
    const axes = graph.nodeAxes(node);
    return out.classes === undefined
      ? { kind: 'tensor', node, axes, dtype: out.dtype }
      : { kind: 'tensor', node, axes, dtype: out.dtype, classes: out.classes };
  });
  return result.tuple ? tuple(values) : values[0];
}
