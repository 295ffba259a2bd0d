// Turns a primitive's result into graph nodes and the value the program sees.
import type { Name } from './ast.ts';
import type { Elaboration, ModuleCall } from './context.ts';
import { fail, spanLocation } from '../ir/diagnostics.ts';
import { Poisoned } from '../ir/convert.ts';
import type { ParamShape, PrimitiveResult } from '../primitives/types.ts';
import type { Span } from '../ir/source.ts';
import { tuple, type TensorValue, type Value } from '../ir/values.ts';

const NO_PARAMS: readonly never[] = Object.freeze([]);

export function addNodes(ctx: Elaboration, op: string, result: PrimitiveResult, span: Span, naming: Name | null): Value {
  const graph = ctx.graph;
  if (!graph) fail('VDM019', span, 'tensors exist only inside a model (or blocks it calls), not in a top-level let');
  // Inside a later call of a shared module, the parameters are those its first call made here.
  const replay = result.params.length > 0 ? ctx.moduleCalls.find((c) => c.replay) : undefined;
  const tie = replay ? matchWeights(replay, naming?.name ?? op, op, result.params, span) : undefined;
  const params = tie === undefined ? result.params : NO_PARAMS;
  // Only calls that make parameters or carry an `as` name take part in parameter naming.
  const named = naming !== null || params.length > 0;
  const entry = named ? ctx.naming.add('op', naming?.name ?? op, naming !== null, params.length) : null;
  const scope = named ? undefined : ctx.naming;
  const inputs = result.inputs.map((t) => t.node);
  const values: TensorValue[] = result.outputs.map((out, i) => {
    const node = graph.add({
      op, inputs, attrs: out.attrs ? { ...result.attrs, ...out.attrs } : result.attrs, axes: out.axes, dtype: out.dtype,
      // A multi-output primitive owns its parameters and MACs once, on its first node.
      params: i === 0 ? params : NO_PARAMS, macs: i === 0 ? result.macs : 0, span, entry, scope,
      tie: i === 0 ? tie : undefined,
    });
    if (i === 0 && result.params.length > 0) {
      for (const c of ctx.moduleCalls) if (!c.replay) c.module.weights!.push({ op, params: result.params, owner: tie ?? node });
    }
    const axes = graph.nodeAxes(node);
    return out.classes === undefined
      ? { kind: 'tensor', node, axes, dtype: out.dtype }
      : { kind: 'tensor', node, axes, dtype: out.dtype, classes: out.classes };
  });
  return result.tuple ? tuple(values) : values[0];
}

const shapeText = (ps: readonly ParamShape[]) => ps.map((p) => `${p.leaf} [${p.shape.join(', ')}]`).join(', ');

/**
 * The owner of the weights a later call of a shared module reads here: the node its first call
 * made at the same place. Different weights (shapes, layer or initialisation) are VDM025 at the call.
 */
function matchWeights(call: ModuleCall, name: string, op: string, params: readonly ParamShape[], span: Span): number {
  if (call.failed) throw new Poisoned();
  const m = call.module;
  const first = m.weights![call.cursor++];
  const module = `shared module '${m.naming}'`;
  const where = m.firstCall ? ` (${spanLocation(m.firstCall)})` : '';
  const hint = "a shared module's weights are made by its first call: every later call must pass inputs of the same sizes";
  if (!first) {
    call.failed = true;
    fail('VDM025', call.span, `this call of ${module} makes more weights than its first call${where}: the ${op} '${name}' (${spanLocation(span)}) is one too many`, hint);
  }
  const same = first.op === op && first.params.length === params.length && first.params.every((p, i) =>
    p.leaf === params[i].leaf && p.init === params[i].init && p.shape.length === params[i].shape.length && p.shape.every((n, k) => n === params[i].shape[k]));
  if (!same) {
    call.failed = true;
    const was = first.op === op ? shapeText(first.params) : `a ${first.op} with ${shapeText(first.params)}`;
    fail('VDM025', call.span, `this call of ${module} needs ${shapeText(params)} for the ${op} '${name}' (${spanLocation(span)}), where its first call${where} made ${was}`, hint);
  }
  return first.owner;
}
