// Names a piece of code would bind. When code is skipped because of an error (an erroneous loop
// range or condition), these names are bound to the error value so later uses stay quiet.
import type { Stmt, Target } from './ast.ts';

export function targetNames(t: Target, out: string[] = []): string[] {
  if (t.type === 'name') out.push(t.name);
  else for (const item of t.items) targetNames(item, out);
  return out;
}

export function assignedNames(stmts: readonly Stmt[], out: string[] = []): string[] {
  for (const s of stmts) {
    switch (s.type) {
      case 'assign': targetNames(s.target, out); break;
      case 'let': for (const b of s.bindings) targetNames(b.target, out); break;
      case 'for': out.push(s.variable.name); assignedNames(s.body, out); break;
      case 'repeat': assignedNames(s.body, out); break;
      case 'ifStmt': assignedNames(s.then, out); if (s.else) assignedNames(s.else, out); break;
      case 'input': out.push(s.name.name); break;
      case 'dims': for (const d of s.dims) out.push(d.name.name); break;
      default: break;
    }
  }
  return out;
}
