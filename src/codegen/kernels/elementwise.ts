// Fused elementwise kernels: any number of strided (possibly broadcast) inputs, expression-IR
// outputs, one invocation per element of the iteration space, all outputs written by ONE kernel.
import { flatKernel, type KernelSpec } from './kernel.ts';
import { coalesce, extent, lowest, numel, stridesOver, wgslCoords, wgslDot, type View } from './view.ts';
import { checkExpr, emitExprs, evalExpr, inputsOf, type Expr } from './expr.ts';

export interface ElementwiseParams {
  /** the iteration space; every operand view has this rank */
  shape: readonly number[];
  /**
   * bound first, in this order. An axis of size 1 (or stride 0) against a larger `shape` axis
   * broadcasts. `binding`: read through another input's binding (another view of the same buffer,
   * e.g. each part of a split), which keeps the kernel within the storage buffers a stage may bind.
   */
  inputs: readonly { name: string; view: View; binding?: string }[];
  /** bound after the inputs; outputs never broadcast */
  outputs: readonly { name: string; view: View; expr: Expr }[];
  workgroupSize?: number;
}

const IDENT = /^[A-Za-z][A-Za-z0-9_]*$/;

function checkIdent(name: string, what: string): void {
  if (!IDENT.test(name)) throw new Error(`${what} name '${name}' must be letters, digits and _ (starting with a letter)`);
}

// ---------------------------------------------------------------- kernel

export function elementwiseKernel(p: ElementwiseParams): KernelSpec {
  const wg = p.workgroupSize ?? 64;
  const total = numel(p.shape);
  if (p.shape.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`elementwise: bad shape [${p.shape}]`);
  if (p.outputs.length === 0) throw new Error('elementwise: at least one output is required');
  const names = new Set<string>();
  for (const { name } of [...p.inputs, ...p.outputs]) {
    checkIdent(name, 'elementwise operand');
    if (names.has(name)) throw new Error(`elementwise: operand name '${name}' is used twice`);
    names.add(name);
  }
  const bound = p.inputs.filter((i) => i.binding === undefined);
  for (const i of p.inputs) {
    if (i.binding !== undefined && !bound.some((b) => b.name === i.binding)) throw new Error(`elementwise: input '${i.name}' reads binding '${i.binding}', which no input declares`);
  }
  const inputNames = new Set(p.inputs.map((i) => i.name));
  p.outputs.forEach((o) => checkExpr(o.expr, inputNames, `output '${o.name}'`));
  const used = inputsOf(p.outputs.map((o) => o.expr));
  // An unused binding would vanish from the 'auto' pipeline layout and make binding it an error.
  for (const i of p.inputs) if (!used.has(i.name)) throw new Error(`elementwise: input '${i.name}' is not used by any output`);

  const inStrides = p.inputs.map((i) => stridesOver(i.view, p.shape, `input '${i.name}'`));
  const outStrides = p.outputs.map((o) => {
    const s = stridesOver(o.view, p.shape, `output '${o.name}'`);
    if (o.view.shape.some((n, i) => n !== p.shape[i])) throw new Error(`output '${o.name}' cannot broadcast`);
    return s;
  });
  for (const { name, view } of [...p.inputs, ...p.outputs]) {
    if (lowest(view) < 0) throw new Error(`elementwise: operand '${name}' reaches below element 0 (a negative stride needs an offset at the axis' far end)`);
  }
  const merged = coalesce(p.shape, [...inStrides, ...outStrides]);

  const decls = [
    ...bound.map((i, k) => `@group(0) @binding(${k}) var<storage, read> b_${i.name}: array<f32>;`),
    ...p.outputs.map((o, k) => `@group(0) @binding(${bound.length + k}) var<storage, read_write> b_${o.name}: array<f32>;`),
  ];
  const loads = p.inputs.map((i, k) => `let v_${i.name} = b_${i.binding ?? i.name}[${wgslDot(i.view.offset, merged.strides[k], 'i')}];`);
  const body = emitExprs(p.outputs.map((o) => o.expr), (name) => `v_${name}`);
  const stores = p.outputs.map((o, k) =>
    `b_${o.name}[${wgslDot(o.view.offset, merged.strides[p.inputs.length + k], 'i')}] = ${body.results[k]};`);

  return flatKernel({
    key: `elementwise:${JSON.stringify([p.shape, p.inputs, p.outputs, wg])}`,
    decls: [...decls, ...body.helpers],
    wg,
    total,
    body: [...wgslCoords(merged.shape, 'flat', 'i'), ...loads, ...body.lines, ...stores],
    bindings: [
      ...bound.map((i) => ({ name: i.name, access: 'read' as const })),
      ...p.outputs.map((o) => ({ name: o.name, access: 'read_write' as const })),
    ],
  });
}

// ---------------------------------------------------------------- float64 reference

/**
 * Evaluates the outputs in float64. Returns one buffer per output, of `extent(view)` elements;
 * elements the view does not cover stay NaN (as the kernel leaves them).
 */
export function elementwiseReference(p: ElementwiseParams, data: Record<string, ArrayLike<number>>): Float64Array[] {
  const inStrides = p.inputs.map((i) => stridesOver(i.view, p.shape, `input '${i.name}'`));
  const outs = p.outputs.map((o) => new Float64Array(extent(o.view)).fill(NaN));
  const idx = new Array(p.shape.length).fill(0);
  const values = new Map<string, number>();
  for (let flat = 0; flat < numel(p.shape); flat++) {
    let r = flat;
    for (let a = p.shape.length - 1; a >= 0; a--) { idx[a] = r % p.shape[a]; r = Math.floor(r / p.shape[a]); }
    p.inputs.forEach((inp, k) => {
      const buf = data[inp.binding ?? inp.name];
      if (!buf) throw new Error(`elementwiseReference: no data for input '${inp.name}'`);
      values.set(inp.name, buf[idx.reduce((o, c, a) => o + c * inStrides[k][a], inp.view.offset)]);
    });
    p.outputs.forEach((o, k) => {
      const at = idx.reduce((acc, c, a) => acc + c * o.view.strides[a], o.view.offset);
      outs[k][at] = evalExpr(o.expr, (n) => values.get(n)!);
    });
  }
  return outs;
}
