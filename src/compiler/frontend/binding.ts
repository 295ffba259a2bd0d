// Matching a call's arguments to parameters, shared by blocks and primitives and by the static
// checker (so both report identical messages): VDM013 too many, VDM014 unknown name, VDM015
// missing, VDM016 given twice.
import type { Name } from './ast.ts';
import { diag, type Diagnostic } from '../ir/diagnostics.ts';
import type { Span } from '../ir/source.ts';
import { didYouMean } from '../ir/suggest.ts';

export interface ParamInfo {
  readonly name: string;
  readonly required: boolean;
  readonly variadic?: boolean;
}

export interface ArgInfo {
  readonly name: Name | null;
  readonly span: Span;
}

export interface Binding {
  /** Parameter name -> index of the argument bound to it. */
  readonly slots: Map<string, number>;
  /** Indexes of further positional arguments taken by a variadic parameter. */
  readonly rest: number[];
  readonly errors: Diagnostic[];
}

export function signatureText(callee: string, params: readonly ParamInfo[]): string {
  return `${callee}(${params.map((p) => (p.variadic ? `${p.name}...` : p.required ? p.name : `${p.name}: ...`)).join(', ')})`;
}

export function bindArguments(callee: string, callSpan: Span, params: readonly ParamInfo[], args: readonly ArgInfo[]): Binding {
  const slots = new Map<string, number>();
  const rest: number[] = [];
  const errors: Diagnostic[] = [];
  let position = 0;
  args.forEach((arg, i) => {
    if (arg.name === null) {
      const p = params[position];
      if (p?.variadic && slots.has(p.name)) {
        rest.push(i);
        return;
      }
      if (!p) {
        if (errors.some((e) => e.code === 'VDM013')) return; // once, at the first extra argument
        errors.push(diag('VDM013', arg.span, `${callee} takes at most ${params.length} argument${params.length === 1 ? '' : 's'}, got ${args.filter((a) => !a.name).length}`,
          `signature: ${signatureText(callee, params)}`));
        return;
      }
      if (slots.has(p.name)) {
        errors.push(diag('VDM016', arg.span, `argument '${p.name}' of ${callee} is given twice`));
      } else {
        slots.set(p.name, i);
      }
      if (!p.variadic) position++;
      return;
    }
    const name = arg.name.name;
    const p = params.find((q) => q.name === name);
    if (!p) {
      const hint = didYouMean(name, params.map((q) => q.name)) ?? `signature: ${signatureText(callee, params)}`;
      errors.push(diag('VDM014', arg.name.span, `${callee} has no argument named '${name}'`, hint));
    } else if (slots.has(name)) {
      errors.push(diag('VDM016', arg.name.span, `argument '${name}' of ${callee} is given twice`));
    } else {
      slots.set(name, i);
      if (p.variadic && params[position] === p) position++;
    }
  });
  for (const p of params) {
    if (p.required && !slots.has(p.name)) {
      errors.push(diag('VDM015', callSpan, `missing argument '${p.name}' of ${callee}`, `signature: ${signatureText(callee, params)}`));
    }
  }
  return { slots, rest, errors };
}
