// The model-only statements: `dims` (with --dim overrides), `input` and `output`.
import type { DimsStmt, InputStmt, OutputStmt } from './ast.ts';
import { annotate } from './annotation.ts';
import { axisDecls } from './axis-decls.ts';
import type { Elaboration, Frame } from './context.ts';
import { asBool, asNumber, asSize, checkSize, wrongKind } from '../ir/convert.ts';
import { DiagError, diag, fail } from '../ir/diagnostics.ts';
import { evalExpr } from './eval-expr.ts';
import type { Json } from '../ir/json.ts';
import { INPUT_KINDS, VIDEO_SIZED_KINDS } from './input-kinds.ts';
import { didYouMean } from '../ir/suggest.ts';
import type { Axis, TensorValue } from '../ir/values.ts';
import type { GraphInput } from '../ir/graph.ts';

export function declareDims(ctx: Elaboration, frame: Frame, s: DimsStmt): void {
  const model = frame.model!;
  for (const d of s.dims) {
    const name = d.name.name;
    if (model.dims.has(name)) {
      ctx.report(diag('VDM012', d.name.span, `dim '${name}' is declared twice`));
      continue;
    }
    let size: number | null = null;
    const override = model.overrides.get(name);
    if (override !== undefined) {
      model.usedOverrides.add(name);
      if (Number.isNaN(override)) {
        frame.vars.set(name, { kind: 'error' });
        continue;
      }
      size = override;
    } else if (d.default) {
      const v = evalExpr(ctx, frame, d.default);
      if (v.kind === 'error') {
        frame.vars.set(name, v);
        continue;
      }
      try {
        size = asSize(v, d.default.span, `dim '${name}'`);
      } catch (err) {
        if (!(err instanceof DiagError)) throw err;
        ctx.report(err.diagnostic);
        frame.vars.set(name, { kind: 'error' });
        continue;
      }
    } else if (name === 'b') {
      size = 1;
    } else {
      frame.vars.set(name, { kind: 'error' });
      ctx.report(diag('VDM070', d.span, `dim '${name}' has no default and no --dim value`, `set it with \`--dim ${name}=N\` or write \`${name} = N\``));
      continue;
    }
    model.dims.set(name, size);
    frame.vars.set(name, { kind: 'dim', name, size });
  }
}

function inputOptions(ctx: Elaboration, frame: Frame, s: InputStmt, kind: string): Record<string, Json> {
  const allowed = INPUT_KINDS[kind].options;
  const options: Record<string, Json> = {};
  for (const arg of s.tensorType.options) {
    const name = arg.name?.name;
    if (!name || !(name in allowed)) {
      const names = Object.keys(allowed);
      fail('VDM014', arg.name?.span ?? arg.span, name ? `a ${kind} input has no option '${name}'` : 'input options must be named, like (classes: 10)',
        names.length ? didYouMean(name ?? '', names) ?? `options of ${kind}: ${names.join(', ')}` : `a ${kind} input takes no options`);
    }
    if (name in options) fail('VDM016', arg.name!.span, `option '${name}' is given twice`);
    const v = evalExpr(ctx, frame, arg.value);
    if (name === 'classes') options.classes = asSize(v, arg.value.span, "option 'classes'");
    else if (name === 'null') options.null = asBool(v, arg.value.span, "option 'null'");
    else if (name === 'range') {
      if (v.kind !== 'tuple' || v.items.length !== 2) wrongKind(v, arg.value.span, "option 'range'", 'a pair (lo, hi)');
      const lo = asNumber(v.items[0], arg.value.span, 'the range start');
      const hi = asNumber(v.items[1], arg.value.span, 'the range end');
      if (!(lo < hi)) fail('VDM035', arg.value.span, `range (${lo}, ${hi}) is empty`);
      options.range = [lo, hi];
    }
  }
  for (const [name, required] of Object.entries(allowed)) {
    if (required && !(name in options)) fail('VDM015', s.tensorType.span, `a ${kind} input needs the option '${name}'`, `e.g. ${kind}[b](${name}: 10)`);
  }
  return options;
}

export function declareInput(ctx: Elaboration, frame: Frame, s: InputStmt): void {
  const model = frame.model!;
  const name = s.name.name;
  if (model.inputs.some((i) => i.name === name)) fail('VDM012', s.name.span, `input '${name}' is declared twice`);
  const kindName = s.tensorType.kind?.name;
  if (!kindName) fail('VDM051', s.tensorType.span, `input '${name}' needs a kind`, 'e.g. video[b, c, t, h, w]');
  const kind = INPUT_KINDS[kindName];
  if (!kind) {
    fail('VDM051', s.tensorType.kind!.span, `unknown input kind '${kindName}'`,
      didYouMean(kindName, Object.keys(INPUT_KINDS)) ?? `kinds: ${Object.keys(INPUT_KINDS).join(', ')}`);
  }
  const decls = axisDecls(ctx, frame, s.tensorType.axes);
  const names = decls.map(([n]) => n);
  const expected = kind.axes;
  if (names.length !== expected.length || !expected.every((a) => names.includes(a))) {
    fail('VDM023', s.tensorType.span, `a ${kindName} input has the axes [${expected.join(', ')}], not [${names.join(', ')}]`);
  }
  const axes: Axis[] = decls.map(([axis, size], i) => {
    const fixed = kind.fixed?.[axis];
    if (size === null && fixed !== undefined) size = fixed;
    if (size === null) {
      fail('VDM010', s.tensorType.axes[i].span, `unknown name '${axis}': no dim gives the size of axis '${axis}'`,
        `declare it in dims, or give the size here: ${axis}=N`);
    }
    if (fixed !== undefined && size !== fixed) fail('VDM023', s.tensorType.axes[i].span, `axis '${axis}' of a ${kindName} input must be ${fixed}`);
    checkSize(size, s.tensorType.axes[i].span, `axis '${axis}'`);
    return [axis, size];
  });
  const options = inputOptions(ctx, frame, s, kindName);
  checkVideoSized(ctx, model.inputs, { name, kind: kindName, axes }, s);
  const node = ctx.graph!.add({
    op: 'input', inputs: [], attrs: { name, kind: kindName }, axes, dtype: kind.dtype, params: [], macs: 0,
    span: s.span, entry: null, path: name,
  });
  model.inputs.push({ name, kind: kindName, dtype: kind.dtype, axes, options });
  const value: TensorValue = kindName === 'label'
    ? { kind: 'tensor', node, axes, dtype: kind.dtype, classes: (options.classes as number) + (options.null ? 1 : 0), ...(options.null ? { nullClass: true } : {}) }
    : { kind: 'tensor', node, axes, dtype: kind.dtype };
  frame.vars.set(name, value);
}

/**
 * A motion map has the video's frames and pixels: its t, h, w against the first video input's
 * (VDM048), checked at whichever of the two is declared second, reported at the differing axis.
 * Reported, not thrown: the input is still declared, so its uses add no follow-up errors.
 */
function checkVideoSized(ctx: Elaboration, declared: readonly GraphInput[], input: Pick<GraphInput, 'name' | 'kind' | 'axes'>, s: InputStmt): void {
  const video = declared.find((i) => i.kind === 'video');
  const pairs = VIDEO_SIZED_KINDS.includes(input.kind) ? (video ? [[input, video] as const] : [])
    : input.kind === 'video' && !video ? declared.filter((i) => VIDEO_SIZED_KINDS.includes(i.kind)).map((m) => [m, input] as const) : [];
  for (const [cond, vid] of pairs) {
    for (const axis of ['t', 'h', 'w']) {
      const want = vid.axes.find(([a]) => a === axis)?.[1];
      const got = cond.axes.find(([a]) => a === axis)?.[1];
      if (want === undefined || got === undefined || want === got) continue;
      const at = input.axes.findIndex(([a]) => a === axis);
      ctx.report(diag('VDM048', s.tensorType.axes[at]?.span ?? s.tensorType.span,
        cond === input ? `${cond.kind} input '${cond.name}' has ${axis}=${got}, but the video input '${vid.name}' has ${axis}=${want}`
          : `video input '${vid.name}' has ${axis}=${want}, but the ${cond.kind} input '${cond.name}' declared before it has ${axis}=${got}`,
        `a ${cond.kind} map gives a displacement for every frame and pixel of the video: declare it as ${cond.kind}[b, c=2, t, h, w] with the video's dims`));
    }
  }
}

export function declareOutput(ctx: Elaboration, frame: Frame, s: OutputStmt): void {
  const model = frame.model!;
  const name = s.name.name;
  if (model.outputNames.has(name)) fail('VDM012', s.name.span, `output '${name}' is declared twice`);
  model.outputNames.add(name);
  const value = evalExpr(ctx, frame, s.value);
  if (value.kind === 'error') return;
  if (value.kind !== 'tensor') wrongKind(value, s.value.span, `output '${name}'`, 'a tensor');
  if (s.annotation) annotate(ctx, frame, s.annotation, value, s.value.span);
  model.outputs.push({ name, node: value.node });
}
