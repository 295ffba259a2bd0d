// The diffusion section: which process trains and samples the model. Each entry is checked
// (VDM060), then the whole against the model (VDM061): the prediction must have the noisy input's
// shape (twice its channels with a learned sigma), guidance needs a droppable condition, etc.
// Entries that do not fit the schedule's family (rectified flow against the DDPM ones) are VDM062.
import type { DiffEntry, DiffusionDef, Expr } from './ast.ts';
import type { Elaboration, Frame } from './context.ts';
import { asNumber, Poisoned } from '../ir/convert.ts';
import { DiagError, diag, fail } from '../ir/diagnostics.ts';
import type { DiffusionSpec, ScheduleSpec } from '../ir/diffusion-spec.ts';
import { evalExpr } from './eval-expr.ts';
import type { GraphInput } from '../ir/graph.ts';
import type { Span } from '../ir/source.ts';
import { didYouMean } from '../ir/suggest.ts';
import { formatAxes, type Axis } from '../ir/values.ts';

const ENTRIES = ['schedule', 'predict', 'loss', 'sampler', 'guidance', 'timesteps'];
const CHOICES: Record<string, Record<string, Record<string, number | boolean>>> = {
  schedule: {
    linear: { beta_start: 1e-4, beta_end: 0.02, steps: 1000 },
    scaled_linear: { beta_start: 0.00085, beta_end: 0.012, steps: 1000 },
    cosine: { steps: 1000, s: 0.008 },
    rectified_flow: { steps: 1000, shift: 1.0 },
  },
  predict: { epsilon: { learned_sigma: false }, v: {}, x0: {} },
  sampler: { ddpm: { steps: 0 }, ddim: { steps: 50, eta: 0 }, euler: { steps: 30 } },
  guidance: { cfg: { scale: 4.0, dropout: 0.1 } },
  timesteps: { uniform: {}, logit_normal: { mean: 0.0, std: 1.0 } },
};
const LOSS_TERMS = ['mse', 'vlb', 'temporal_consistency'] as const;

export interface ModelFacts {
  readonly inputs: readonly GraphInput[];
  /** Axes of the first output. */
  readonly output: readonly Axis[] | null;
  /** Names of the inputs the outputs depend on. */
  readonly used?: ReadonlySet<string>;
}

interface Choice {
  readonly name: string;
  readonly values: Record<string, number | boolean>;
  readonly span: Span;
}

/** `name` or `name(arg: value, ...)` from the entry's table, with defaults filled in. */
function choice(ctx: Elaboration, frame: Frame, entry: DiffEntry): Choice {
  const table = CHOICES[entry.key.name];
  const e = entry.value;
  const callee = e.type === 'ident' ? e.name : e.type === 'call' ? e.callee.name : null;
  const calleeSpan = e.type === 'call' ? e.callee.span : e.span;
  if (callee === null || !(callee in table)) {
    const names = Object.keys(table);
    fail('VDM060', calleeSpan, `${entry.key.name} must be one of ${names.join(', ')}`, callee ? didYouMean(callee, names) : undefined);
  }
  const values = { ...table[callee] };
  if (e.type === 'call') {
    const given = new Set<string>();
    for (const arg of e.args) {
      if (!arg.name) fail('VDM060', arg.span, `arguments of ${callee} must be named, like steps: 50`);
      const name = arg.name.name;
      if (!(name in values) || given.has(name)) {
        fail('VDM060', arg.name.span, given.has(name) ? `'${name}' is given twice` : `${callee} has no setting '${name}'`,
          didYouMean(name, Object.keys(values)) ?? (Object.keys(values).length ? `settings: ${Object.keys(values).join(', ')}` : `${callee} takes no settings`));
      }
      given.add(name);
      const v = evalExpr(ctx, frame, arg.value);
      if (v.kind === 'error') throw new Poisoned();
      if (typeof values[name] === 'boolean') {
        if (v.kind !== 'bool') fail('VDM060', arg.value.span, `${name} must be true or false`);
        values[name] = v.value;
      } else {
        values[name] = asNumber(v, arg.value.span, `${callee} setting '${name}'`);
      }
    }
  }
  return { name: callee, values, span: e.span };
}

function requireRange(c: Choice, name: string, ok: (x: number) => boolean, rule: string): number {
  const x = c.values[name] as number;
  if (!ok(x)) fail('VDM060', c.span, `${c.name} ${name} must be ${rule}, got ${x}`);
  return x;
}

/** Steps of a schedule or sampler: whole, positive, and of a size a run could ever take. */
const MAX_STEPS = 100_000;
const positiveInt = (x: number) => Number.isInteger(x) && x > 0 && x <= MAX_STEPS;

const LOSS_SHAPE = `a loss is a sum of terms (${LOSS_TERMS.join(', ')}), each optionally times a number, like \`mse + 0.1 * temporal_consistency\``;

/** The written text of a short expression, for messages. */
function written(e: Expr): string {
  const text = e.span.source.text.slice(e.span.start, e.span.end).replace(/\s+/g, ' ');
  return text.length <= 40 ? `'${text}'` : 'this';
}

const isLossTerm = (x: Expr) => x.type === 'ident' && (LOSS_TERMS as readonly string[]).includes(x.name);

/** The operands of a chain of `+`, left to right, walked in a loop (a loss may be a long sum). */
function sumOperands(e: Expr): Expr[] {
  const out: Expr[] = [];
  const pending: Expr[] = [e];
  while (pending.length) {
    const x = pending.pop()!;
    if (x.type === 'binary' && x.op === '+') pending.push(x.right, x.left);
    else out.push(x);
  }
  return out;
}

/** Whether an expression mentions a loss term by name (then it is a misshapen loss, not a weight). */
function mentionsLossTerm(e: Expr): boolean {
  const pending: Expr[] = [e];
  while (pending.length) {
    const x = pending.pop()!;
    if (isLossTerm(x)) return true;
    if (x.type === 'binary') pending.push(x.left, x.right);
    else if (x.type === 'unary') pending.push(x.operand);
  }
  return false;
}

/** Each term is its own error boundary, so every bad term of one loss is reported. */
function lossTerms(ctx: Elaboration, frame: Frame, e: Expr, out: { term: typeof LOSS_TERMS[number]; weight: number }[]): void {
  let failed = false;
  for (const operand of sumOperands(e)) {
    try {
      lossTerm(ctx, frame, operand, out);
    } catch (err) {
      if (err instanceof DiagError) ctx.report(err.diagnostic);
      else if (!(err instanceof Poisoned)) throw err;
      failed = true;
    }
  }
  if (failed) throw new Poisoned();
}

function lossTerm(ctx: Elaboration, frame: Frame, e: Expr, out: { term: typeof LOSS_TERMS[number]; weight: number }[]): void {
  let term: Expr = e;
  let weight = 1;
  if (e.type === 'binary' && e.op === '*') {
    // The term is the name; the other side is the weight (`0.1 * temporal_consistency` or `mse * 2`).
    const termOnRight = isLossTerm(e.right) || (e.right.type === 'ident' && !isLossTerm(e.left) && e.left.type !== 'ident');
    term = termOnRight ? e.right : e.left;
    const weightExpr = termOnRight ? e.left : e.right;
    if (mentionsLossTerm(weightExpr)) fail('VDM060', e.span, `${written(e)} multiplies loss terms; ${LOSS_SHAPE}`);
    const w = evalExpr(ctx, frame, weightExpr);
    if (w.kind === 'error') throw new Poisoned();
    weight = asNumber(w, weightExpr.span, 'a loss weight');
    if (!(weight >= 0 && Number.isFinite(weight))) fail('VDM060', e.span, `a loss weight must be a finite number at least 0, got ${weight}`);
  }
  if (!isLossTerm(term)) {
    const hint = term.type === 'ident' ? didYouMean(term.name, LOSS_TERMS) : undefined;
    fail('VDM060', term.span, `${written(term)} is not a loss term; ${LOSS_SHAPE}`, hint);
  }
  const name = (term as { name: string }).name as typeof LOSS_TERMS[number];
  if (out.some((t) => t.term === name)) fail('VDM060', term.span, `loss term '${name}' appears twice`);
  out.push({ term: name, weight });
}

/** Checks the section; returns the spec when the section and its agreement with the model hold. */
export function checkDiffusion(ctx: Elaboration, frame: Frame, def: DiffusionDef, model: ModelFacts): DiffusionSpec | null {
  const errorsBefore = ctx.diagnostics.length;
  const entries = new Map<string, DiffEntry>();
  for (const entry of def.entries) {
    const key = entry.key.name;
    if (!ENTRIES.includes(key)) {
      ctx.report(diag('VDM060', entry.key.span, `unknown diffusion entry '${key}'`, didYouMean(key, ENTRIES) ?? `entries: ${ENTRIES.join(', ')}`));
    } else if (entries.has(key)) {
      ctx.report(diag('VDM060', entry.key.span, `diffusion entry '${key}' is given twice`));
    } else {
      entries.set(key, entry);
    }
  }
  const guarded = <T>(f: () => T): T | null => {
    try {
      return f();
    } catch (err) {
      if (err instanceof DiagError) ctx.report(err.diagnostic);
      else if (!(err instanceof Poisoned)) throw err;
      return null;
    }
  };
  const pick = (key: string, fallback: string) => {
    const entry = entries.get(key);
    return entry ? guarded(() => choice(ctx, frame, entry)) : { name: fallback, values: { ...CHOICES[key][fallback] }, span: def.span };
  };

  const sched = pick('schedule', 'linear');
  const schedule = sched && guarded((): ScheduleSpec => {
    const steps = requireRange(sched, 'steps', positiveInt, `a whole number from 1 to ${MAX_STEPS}`);
    if (sched.name === 'cosine') return { kind: 'cosine', steps, s: requireRange(sched, 's', (x) => x >= 0, 'at least 0') };
    if (sched.name === 'rectified_flow') return { kind: 'rectified_flow', steps, shift: requireRange(sched, 'shift', (x) => x > 0 && Number.isFinite(x), 'a finite number above 0') };
    const start = requireRange(sched, 'beta_start', (x) => x > 0 && x < 1, 'between 0 and 1');
    const end = requireRange(sched, 'beta_end', (x) => x > start && x < 1, `between beta_start (${start}) and 1`);
    return { kind: sched.name as 'linear' | 'scaled_linear', beta_start: start, beta_end: end, steps };
  });
  // rectified flow's defaults: the velocity and the Euler sampler
  const flow = sched?.name === 'rectified_flow';
  const pred = pick('predict', flow ? 'v' : 'epsilon');
  const predict = pred && { target: pred.name as 'epsilon' | 'v' | 'x0', learned_sigma: pred.values.learned_sigma === true };
  const lossEntry = entries.get('loss');
  const loss = lossEntry
    ? guarded(() => {
      const terms: { term: typeof LOSS_TERMS[number]; weight: number }[] = [];
      lossTerms(ctx, frame, lossEntry.value, terms);
      return terms;
    })
    : [{ term: 'mse' as const, weight: 1 }];
  const samp = pick('sampler', flow ? 'euler' : 'ddpm');
  const sampler = samp && guarded(() => {
    if (samp.name === 'euler') {
      const steps = requireRange(samp, 'steps', positiveInt, `a whole number from 1 to ${MAX_STEPS}`);
      if (schedule && steps > schedule.steps) fail('VDM060', samp.span, `euler steps (${steps}) exceed the schedule's ${schedule.steps} levels`);
      return { kind: 'euler' as const, steps };
    }
    if (samp.name === 'ddpm') {
      const steps = samp.values.steps === 0 ? (schedule?.steps ?? 1000) : requireRange(samp, 'steps', positiveInt, `a whole number from 1 to ${MAX_STEPS}`);
      return { kind: 'ddpm' as const, steps };
    }
    const steps = requireRange(samp, 'steps', positiveInt, `a whole number from 1 to ${MAX_STEPS}`);
    if (schedule && steps > schedule.steps) fail('VDM060', samp.span, `ddim steps (${steps}) exceed the schedule's ${schedule.steps} steps`);
    return { kind: 'ddim' as const, steps, eta: requireRange(samp, 'eta', (x) => x >= 0 && x <= 1, 'between 0 and 1') };
  });
  const guidanceEntry = entries.get('guidance');
  const guid = guidanceEntry ? guarded(() => choice(ctx, frame, guidanceEntry)) : null;
  const guidance = guid && guarded(() => ({
    kind: 'cfg' as const,
    scale: requireRange(guid, 'scale', (x) => x >= 0, 'at least 0'),
    dropout: requireRange(guid, 'dropout', (x) => x >= 0 && x < 1, 'at least 0 and below 1'),
  }));

  const ts = pick('timesteps', 'uniform');
  const timesteps = ts && guarded(() => (ts.name === 'logit_normal'
    ? {
      kind: 'logit_normal' as const,
      mean: requireRange(ts, 'mean', (x) => Math.abs(x) <= 10, 'between -10 and 10'),
      std: requireRange(ts, 'std', (x) => x > 0 && x <= 10, 'above 0 and at most 10'),
    }
    : { kind: 'uniform' as const }));

  // Agreement with the schedule: rectified flow has no DDPM posterior (no ddpm/ddim sampler, no vlb,
  // no learned sigma) and its t' = 1 level has no signal (epsilon prediction cannot give x0 there).
  const report62 = (span: Span, message: string, hint?: string) => ctx.report(diag('VDM062', span, message, hint));
  const schedSpan = entries.get('schedule')?.span ?? def.span;
  if (sched && samp) {
    if (flow && samp.name !== 'euler') {
      report62(samp.span, `the ${samp.name} sampler needs a DDPM schedule; rectified_flow samples with euler`, `sampler euler(steps: ${Math.min(30, schedule?.steps ?? 30)})`);
    } else if (!flow && samp.name === 'euler') {
      report62(samp.span, `the euler sampler integrates a rectified flow; schedule ${sched.name} samples with ddpm or ddim`, 'schedule rectified_flow(steps: 1000), or sampler ddim(steps: 50)');
    }
  }
  if (flow && pred && pred.name !== 'v') {
    report62(pred.span, `rectified_flow predicts the velocity v = ε − x0, not ${pred.name}`, 'predict v');
  }
  if (flow && loss) {
    for (const term of loss.filter((t) => t.term !== 'mse')) {
      report62(lossEntry?.span ?? schedSpan, `the ${term.term} loss term does not apply to rectified_flow: it trains mse on the velocity`,
        term.term === 'vlb' ? 'vlb is the DDPM variational bound of a learned variance; rectified flow has neither' : 'loss mse');
    }
  }

  // Agreement with the model.
  const noisy = model.inputs.find((i) => i.kind === 'video' || i.kind === 'image');
  const report61 = (span: Span, message: string, hint?: string) => ctx.report(diag('VDM061', span, message, hint));
  if (!noisy) report61(def.span, 'the diffusion process needs a video or image input for the noisy sample');
  if (pred && predict && pred.name !== 'epsilon' && pred.values.learned_sigma === true) {
    report61(pred.span, 'learned_sigma applies to epsilon prediction only');
  }
  if (noisy && model.output && predict) {
    const c = noisy.axes.find(([n]) => n === 'c')?.[1] ?? 0;
    const want: Axis[] = noisy.axes.map(([n, s]) => [n, n === 'c' && predict.learned_sigma ? 2 * c : s]);
    const got = model.output;
    const same = want.length === got.length && want.every(([n, s]) => got.some(([m, z]) => m === n && z === s));
    if (!same) {
      report61(pred?.span ?? def.span, `the model's output ${formatAxes(got)} does not match ${predict.learned_sigma ? 'twice the channels of ' : ''}the noisy input '${noisy.name}' ${formatAxes(noisy.axes)}`,
        predict.learned_sigma ? `with learned_sigma the output needs c=${2 * c}` : undefined);
    }
  }
  const lossSpan = lossEntry?.span ?? def.span;
  if (!flow && loss?.some((t) => t.term === 'vlb') && predict && !predict.learned_sigma) {
    report61(lossSpan, 'the vlb loss term needs predict epsilon(learned_sigma: true)');
  }
  if (!flow && loss?.some((t) => t.term === 'temporal_consistency') && noisy) {
    const frames = noisy.axes.find(([n]) => n === 't')?.[1];
    if (frames === undefined) report61(lossSpan, 'temporal_consistency needs a noisy input with a t axis (a video)');
    else if (frames < 2) {
      report61(lossSpan, `temporal_consistency compares adjacent frames, but '${noisy.name}' has t = ${frames}`,
        'drop the term for an image model, or give the video at least 2 frames');
    }
  }
  if (guidance) {
    const droppable = model.inputs.filter((i) => (i.kind === 'label' && i.options.null === true) || i.kind === 'text');
    const used = droppable.filter((i) => model.used === undefined || model.used.has(i.name));
    if (!droppable.length) {
      report61(guidanceEntry!.span, 'classifier-free guidance needs a condition that can be dropped',
        'add a label input with null: true, or a text input');
    } else if (!used.length) {
      const names = droppable.map((i) => `'${i.name}'`).join(', ');
      report61(guidanceEntry!.span, `classifier-free guidance drops ${names}, but the model's output does not depend on ${droppable.length > 1 ? 'them' : 'it'}: guidance would change nothing`,
        `feed ${names} into the model (e.g. through an embedding added to the conditioning), or remove the guidance entry`);
    }
  }
  if (ctx.diagnostics.length !== errorsBefore || !schedule || !predict || !loss || !sampler || !timesteps || !noisy) return null;
  return { schedule, predict, loss, sampler, guidance: guidance ?? null, noisy_input: noisy.name, ...(timesteps.kind === 'uniform' ? {} : { timesteps }) };
}
