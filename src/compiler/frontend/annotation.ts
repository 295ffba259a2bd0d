// Shape annotations `z: [b, c=d, t, h=h/2, w=w/2] = e`: the listed axes must be exactly the
// tensor's (any order), and sizes given or implied by a dim must match (VDM023).
import type { TensorType } from './ast.ts';
import { axisDecls } from './axis-decls.ts';
import type { Elaboration, Frame } from './context.ts';
import { Poisoned, wrongKind } from '../ir/convert.ts';
import { diag } from '../ir/diagnostics.ts';
import type { Span } from '../ir/source.ts';
import { formatAxes, type Value } from '../ir/values.ts';

export function annotate(ctx: Elaboration, frame: Frame, t: TensorType, value: Value, valueSpan: Span): void {
  if (value.kind === 'error') return;
  if (value.kind !== 'tensor') wrongKind(value, valueSpan, 'an annotated value', 'a tensor');
  let decls: [string, number | null][];
  try {
    decls = axisDecls(ctx, frame, t.axes);
  } catch (err) {
    if (err instanceof Poisoned) return;
    throw err;
  }
  const actual = value.axes;
  const missing = actual.filter(([n]) => !decls.some(([m]) => m === n)).map(([n]) => n);
  const extra = decls.filter(([n]) => !actual.some(([m]) => m === n)).map(([n]) => n);
  const written = `[${t.axes.map((a) => a.name.name).join(', ')}]`;
  if (missing.length || extra.length) {
    const parts = [missing.length ? `not listed: ${missing.join(', ')}` : '', extra.length ? `not in the tensor: ${extra.join(', ')}` : ''];
    ctx.report(diag('VDM023', t.span, `annotation ${written} does not match the tensor ${formatAxes(actual)}`,
      parts.filter(Boolean).join('; ')));
    return;
  }
  decls.forEach(([name, size], i) => {
    const real = actual.find(([n]) => n === name)![1];
    if (size !== null && size !== real) {
      ctx.report(diag('VDM023', t.axes[i].span, `axis '${name}' is ${real}, but the annotation says ${size}`,
        `the tensor is ${formatAxes(actual)}`));
    }
  });
}
