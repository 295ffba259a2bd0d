// State shared by one elaboration: diagnostics, the graph being built, the current naming scope,
// and the budgets. Frames hold the variables of one block call, the model body, or a file's lets.
import { withCallChain, type CallFrame } from './call-chain.ts';
import { diag, type Diagnostic } from '../ir/diagnostics.ts';
import type { GraphBuilder } from './graph-builder.ts';
import { Abort, LIMITS } from './limits.ts';
import type { NameEntry, NameScope } from './naming.ts';
import type { ParamShape, Primitive } from '../primitives/types.ts';
import type { ModelState } from './model-state.ts';
import type { BlockRef, ModuleScope } from './scope.ts';
import type { SourceFile, Span } from '../ir/source.ts';
import type { Value } from '../ir/values.ts';

export interface Frame {
  readonly vars: Map<string, Value>;
  readonly scope: ModuleScope;
  /** Set in the model body, where dims, inputs and outputs are declared. */
  readonly model: ModelState | null;
  /** The block being run, or null in a model body or top-level let. */
  readonly block: string | null;
}

/** A parametric node of a shared module's first call, in the order made: what every later call must match. */
export interface WeightUse {
  readonly op: string;
  readonly params: readonly ParamShape[];
  /** The node that owns these parameters (a later call's nodes read them). */
  readonly owner: number;
}

/** A shared module bound by `name = callee as naming` (see calls.ts). */
export interface SharedModule {
  readonly callee: string;
  readonly naming: string;
  readonly block: BlockRef | null;
  readonly primitive: Primitive | null;
  /** The naming entry where it was bound: its first call's nodes and parameters go under it. */
  readonly entry: NameEntry;
  /** null until the first call; then the weights that call made, in order */
  weights: WeightUse[] | null;
  firstCall: Span | null;
  /** Its first call failed: later calls are silent errors. */
  broken: boolean;
}

/** A call of a shared module being run: the first (recording its weights) or a later one (matching them). */
export interface ModuleCall {
  readonly module: SharedModule;
  readonly replay: boolean;
  /** the next of the module's weights a later call must make */
  cursor: number;
  readonly span: Span;
  /** a mismatch was reported: the rest of this call is quiet */
  failed: boolean;
}

export class Elaboration {
  readonly diagnostics: Diagnostic[] = [];
  naming: NameScope;
  depth = 0;
  /** The block calls running now, outermost first. */
  readonly calls: CallFrame[] = [];
  /** Shared modules bound so far (a module value holds its index). */
  readonly modules: SharedModule[] = [];
  /** The calls of shared modules running now, outermost first. */
  readonly moduleCalls: ModuleCall[] = [];
  /** The model's dims as declared so far (none while evaluating top-level lets). */
  modelDims: ReadonlyMap<string, number> = new Map();
  /** Units of work so far (see step). */
  steps = 0;
  /** Items and characters built, copied or compared so far (see work). */
  workDone = 0;

  constructor(
    /** null while evaluating top-level lets, where no tensor can exist. */
    readonly graph: GraphBuilder | null,
    naming: NameScope,
    /** Files with a failed import: unknown names there are not reported (they would be noise). */
    private readonly incomplete: ReadonlySet<SourceFile> = new Set(),
  ) {
    this.naming = naming;
  }

  /** What each diagnostic kept says and where: a loop reports the same problem once, not per iteration. */
  private readonly reported = new Set<string>();

  report(d: Diagnostic): void {
    if ((d.code === 'VDM010' || d.code === 'VDM011') && d.span && this.incomplete.has(d.span.source)) return;
    // A repeat (same code, place and message; the first is the one shown) and anything past the
    // limit on kept diagnostics are dropped: errors inside loops would otherwise pile up by the
    // hundred thousand before the step budget ends the elaboration.
    const key = `${d.code}|${d.span ? `${d.span.source.absPath}|${d.span.start}|${d.span.end}` : d.file ?? ''}|${this.calls.length > 0}|${d.message}`;
    if (this.reported.has(key) || this.reported.size >= LIMITS.diagnostics) return;
    this.reported.add(key);
    this.diagnostics.push(withCallChain(d, this.calls));
  }

  /** Counts one unit of work; a runaway elaboration ends with VDM040. */
  step(span: Span): void {
    if (++this.steps > LIMITS.steps) {
      throw new Abort(diag('VDM040', span, `elaboration takes more than ${LIMITS.steps} steps`,
        'a loop or recursion is probably far larger than intended'));
    }
  }

  /** Counts `units` items or characters built, copied or compared; too many end with VDM040. */
  work(units: number, span: Span): void {
    this.workDone += units;
    if (this.workDone > LIMITS.work) {
      throw new Abort(diag('VDM040', span, `elaboration builds or compares more than ${LIMITS.work} values and characters`,
        'a loop probably copies or compares a large tuple or string on every iteration'));
    }
  }
}
