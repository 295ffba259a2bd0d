// conv(x, over, kernel, out, stride, padding, dilation, groups, bias): convolution over named axes.
import { fail } from '../diagnostics.ts';
import { asPerAxis, asString } from '../convert.ts';
import { numel } from '../values.ts';
import { product, requireAxes, resolvePerAxis, sizeOf, withSize, withSizes } from './axes.ts';
import type { BoundArgs, ParamShape, Primitive } from './types.ts';

/** Padding per conv axis: "same" (d(k-1)/2, needs it whole), "valid" (0), an integer or a named tuple. */
function paddingOf(a: BoundArgs, over: string[], kernel: Map<string, number>, dilation: Map<string, number>): Map<string, number> {
  const v = a.value('padding');
  const span = a.span('padding');
  if (v.kind === 'string') {
    const mode = asString(v, span, a.what('padding'), ['same', 'valid']);
    const pad = new Map<string, number>();
    for (const ax of over) {
      const reach = dilation.get(ax)! * (kernel.get(ax)! - 1);
      if (mode === 'same' && reach % 2 !== 0) {
        fail('VDM034', span, `padding "same" needs an odd kernel, but kernel ${ax}=${kernel.get(ax)}`,
          'use an odd kernel, padding: "valid", or an explicit padding');
      }
      pad.set(ax, mode === 'same' ? reach / 2 : 0);
    }
    return pad;
  }
  const pad = resolvePerAxis(asPerAxis(v, span, a.what('padding')), over, span, a.what('padding'), 0);
  for (const [ax, p] of pad) if (p < 0) fail('VDM034', span, `padding ${ax}=${p} is negative`);
  return pad;
}

function positive(map: Map<string, number>, a: BoundArgs, arg: string): Map<string, number> {
  for (const [ax, v] of map) if (v < 1) fail('VDM034', a.span(arg), `${arg} ${ax}=${v} must be at least 1`);
  return map;
}

export const conv: Primitive = {
  name: 'conv',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axes' },
    { name: 'kernel', kind: 'per-axis' },
    { name: 'out', kind: 'size', default: { computed: 'size(x, c)' } },
    { name: 'stride', kind: 'per-axis', default: 1 },
    { name: 'padding', kind: 'padding', default: 'same' },
    { name: 'dilation', kind: 'per-axis', default: 1 },
    { name: 'groups', kind: 'size', default: 1 },
    { name: 'bias', kind: 'bool', default: true },
  ],
  apply(a) {
    const x = a.tensor('x');
    const over = a.axes('over');
    requireAxes(x, over, a.span('over'));
    if (over.includes('c') || over.includes('b')) {
      fail('VDM017', a.span('over'), `'over' of conv cannot include the ${over.includes('c') ? 'channel axis c' : 'batch axis b'}`);
    }
    const c = sizeOf(x, 'c', a.span('x'));
    const out = a.has('out') ? a.size('out') : c;
    const kernel = positive(resolvePerAxis(a.perAxis('kernel'), over, a.span('kernel'), a.what('kernel')), a, 'kernel');
    const stride = positive(resolvePerAxis(a.perAxis('stride'), over, a.span('stride'), a.what('stride'), 1), a, 'stride');
    const dilation = positive(resolvePerAxis(a.perAxis('dilation'), over, a.span('dilation'), a.what('dilation'), 1), a, 'dilation');
    const groups = a.size('groups');
    const bias = a.bool('bias');
    if (c % groups !== 0 || out % groups !== 0) {
      fail('VDM030', a.span('groups'), `groups=${groups} must divide both c=${c} and out=${out}`);
    }
    const padding = paddingOf(a, over, kernel, dilation);
    const sizes = new Map<string, number>([['c', out]]);
    for (const ax of over) {
      const n = sizeOf(x, ax, a.span('over'));
      const k = kernel.get(ax)!;
      const d = dilation.get(ax)!;
      const size = Math.floor((n + 2 * padding.get(ax)! - d * (k - 1) - 1) / stride.get(ax)!) + 1;
      if (size < 1) fail('VDM034', a.span('kernel'), `kernel ${ax}=${k} does not fit in ${ax}=${n} (output size would be ${size})`);
      sizes.set(ax, size);
    }
    const axes = withSizes(x.axes, sizes);
    const kernelShape = over.map((ax) => kernel.get(ax)!);
    const params: ParamShape[] = [{ leaf: 'weight', shape: [out, c / groups, ...kernelShape], init: 'default' }];
    if (bias) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    return {
      inputs: [x],
      attrs: {
        over, kernel: Object.fromEntries(kernel), out, stride: Object.fromEntries(stride),
        padding: Object.fromEntries(padding), dilation: Object.fromEntries(dilation), groups, bias,
      },
      outputs: [{ axes: withSize(axes, 'c', out), dtype: 'f32' }],
      params,
      macs: numel(axes) * (c / groups) * product(kernelShape),
    };
  },
};
