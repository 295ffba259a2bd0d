// Meaning check for `vdm fmt`: two sources mean the same when their ASTs are equal once source
// positions are ignored. The formatter refuses to write a result that fails this check.
import type { FileAst } from '../frontend/ast.ts';

/** The AST as JSON without spans or the source file, so only structure and values remain. */
export function astShape(ast: FileAst): string {
  return JSON.stringify(ast.items, (key, value) => (key === 'span' || key.endsWith('Span') || key === 'source' ? undefined : value));
}

export function sameMeaning(a: FileAst, b: FileAst): boolean {
  return astShape(a) === astShape(b);
}
