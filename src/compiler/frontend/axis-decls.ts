// Sizes of the axes written in `video[b, c, t=16]` or `[b, c=d]`: `name=expr` gives a size; a bare
// name takes the size of the dim of that name, when one is in scope.
import type { AxisDecl } from './ast.ts';
import type { Elaboration, Frame } from './context.ts';
import { asSize, Poisoned } from '../ir/convert.ts';
import { fail } from '../ir/diagnostics.ts';
import { evalExpr, lookup } from './eval-expr.ts';

/** [name, size or null when unknown] for each declared axis; repeats are VDM022. */
export function axisDecls(ctx: Elaboration, frame: Frame, decls: readonly AxisDecl[]): [string, number | null][] {
  const out: [string, number | null][] = [];
  for (const d of decls) {
    const name = d.name.name;
    if (out.some(([n]) => n === name)) fail('VDM022', d.name.span, `axis '${name}' is listed twice`);
    if (d.size) {
      out.push([name, asSize(evalExpr(ctx, frame, d.size), d.size.span, `the size of axis '${name}'`)]);
      continue;
    }
    const bound = lookup(frame, name, d.name.span);
    if (bound.kind === 'error') throw new Poisoned();
    out.push([name, bound.kind === 'dim' ? bound.size : null]);
  }
  return out;
}
