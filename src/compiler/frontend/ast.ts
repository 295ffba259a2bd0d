// The typed, immutable syntax tree of a .vdm file. Every node carries the span it was written at.
import type { SourceFile, Span } from '../ir/source.ts';
import type { Diagnostic } from '../ir/diagnostics.ts';

export interface Name {
  readonly name: string;
  readonly span: Span;
}

// ---- expressions ----
export type Expr = NumberLit | StringLit | BoolLit | Ident | TupleExpr | CallExpr | IndexExpr
  | UnaryExpr | BinaryExpr | RangeExpr | IfExpr | ModuleExpr;

export interface NumberLit { readonly type: 'number'; readonly value: number; readonly span: Span }
export interface StringLit { readonly type: 'string'; readonly value: string; readonly span: Span }
export interface BoolLit { readonly type: 'bool'; readonly value: boolean; readonly span: Span }
export interface Ident { readonly type: 'ident'; readonly name: string; readonly span: Span }

export interface TupleItem {
  /** Set for named-tuple items such as `h: 2`. */
  readonly name: Name | null;
  readonly value: Expr;
}
export interface TupleExpr { readonly type: 'tuple'; readonly items: readonly TupleItem[]; readonly span: Span }

export interface Arg {
  readonly name: Name | null;
  readonly value: Expr;
  readonly span: Span;
}
export interface CallExpr {
  readonly type: 'call';
  readonly callee: Name;
  readonly args: readonly Arg[];
  /** `as name`: the parameter-path segment of this call. */
  readonly naming: Name | null;
  readonly span: Span;
}
/**
 * `conv_cell as fwd` (only as the whole right side of an assignment): a shared module, the block or
 * primitive `callee` whose weights are made once under `naming` and read by every call of it.
 */
export interface ModuleExpr { readonly type: 'module'; readonly callee: Name; readonly naming: Name; readonly span: Span }
export interface IndexExpr { readonly type: 'index'; readonly target: Ident; readonly index: Expr; readonly span: Span }

export type UnaryOp = '-' | 'not';
export interface UnaryExpr { readonly type: 'unary'; readonly op: UnaryOp; readonly operand: Expr; readonly span: Span }

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '**' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'and' | 'or';
export interface BinaryExpr {
  readonly type: 'binary';
  readonly op: BinaryOp;
  readonly left: Expr;
  readonly right: Expr;
  readonly opSpan: Span;
  readonly span: Span;
}
export interface RangeExpr { readonly type: 'range'; readonly start: Expr; readonly end: Expr; readonly span: Span }
export interface IfExpr {
  readonly type: 'if';
  readonly cond: Expr;
  readonly then: Expr;
  readonly else: Expr;
  readonly span: Span;
}

// ---- statements ----
export type Stmt = DimsStmt | InputStmt | OutputStmt | LetStmt | AssignStmt | ForStmt | RepeatStmt
  | IfStmt | AssertStmt | ReturnStmt;

export interface DimDecl { readonly name: Name; readonly default: Expr | null; readonly span: Span }
export interface DimsStmt { readonly type: 'dims'; readonly dims: readonly DimDecl[]; readonly span: Span }

export interface AxisDecl { readonly name: Name; readonly size: Expr | null; readonly span: Span }
/** `video[b, c, t]` (input) or `[b, c=d]` (annotation); options as in `label[b](classes: 10)`. */
export interface TensorType {
  readonly kind: Name | null;
  readonly axes: readonly AxisDecl[];
  readonly options: readonly Arg[];
  readonly span: Span;
}
export interface InputStmt { readonly type: 'input'; readonly name: Name; readonly tensorType: TensorType; readonly span: Span }
export interface OutputStmt {
  readonly type: 'output';
  readonly name: Name;
  readonly annotation: TensorType | null;
  readonly value: Expr;
  readonly span: Span;
}

export type Target = NameTarget | TupleTarget;
export interface NameTarget { readonly type: 'name'; readonly name: string; readonly span: Span }
export interface TupleTarget { readonly type: 'tuple'; readonly items: readonly Target[]; readonly span: Span }

export interface AssignStmt {
  readonly type: 'assign';
  readonly target: Target;
  readonly annotation: TensorType | null;
  readonly value: Expr;
  readonly span: Span;
}
export interface LetStmt { readonly type: 'let'; readonly bindings: readonly AssignStmt[]; readonly span: Span }
export interface ForStmt {
  readonly type: 'for';
  readonly variable: Name;
  readonly iterable: Expr;
  readonly naming: Name | null;
  readonly body: readonly Stmt[];
  readonly span: Span;
}
export interface RepeatStmt {
  readonly type: 'repeat';
  readonly count: Expr;
  readonly naming: Name | null;
  readonly body: readonly Stmt[];
  readonly span: Span;
}
export interface IfStmt {
  readonly type: 'ifStmt';
  readonly cond: Expr;
  readonly then: readonly Stmt[];
  /** `else if` is an else-body holding one IfStmt. */
  readonly else: readonly Stmt[] | null;
  readonly span: Span;
}
export interface AssertStmt { readonly type: 'assert'; readonly cond: Expr; readonly message: string | null; readonly span: Span }
export interface ReturnStmt { readonly type: 'return'; readonly value: Expr; readonly span: Span }

// ---- top-level items ----
export interface ImportItem { readonly type: 'import'; readonly path: string; readonly pathSpan: Span; readonly span: Span }
export interface Param { readonly name: Name; readonly default: Expr | null }
export interface BlockDef {
  readonly type: 'block';
  readonly name: Name;
  readonly params: readonly Param[];
  readonly body: readonly Stmt[];
  readonly span: Span;
}
export interface ModelDef { readonly type: 'model'; readonly name: Name; readonly body: readonly Stmt[]; readonly span: Span }
export interface DiffEntry { readonly key: Name; readonly value: Expr; readonly span: Span }
export interface DiffusionDef { readonly type: 'diffusion'; readonly entries: readonly DiffEntry[]; readonly span: Span }

export type Item = ImportItem | BlockDef | ModelDef | DiffusionDef | LetStmt;

export interface FileAst {
  readonly source: SourceFile;
  readonly items: readonly Item[];
}

/** A parsed file, or its syntax error. */
export type ParseResult = { ok: true; ast: FileAst } | { ok: false; diagnostic: Diagnostic };
