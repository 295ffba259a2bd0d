// The contract between kernel generators (src/codegen) and the runtime (src/runtime).
// A generator turns compile-time parameters into a KernelSpec; the runtime compiles it once
// (cached by `key`) and dispatches it over buffers bound in declaration order.

export type BindingAccess = 'read' | 'read_write' | 'uniform';

export interface KernelBinding {
  /** the WGSL variable name, for messages and readability */
  name: string;
  access: BindingAccess;
}

export interface KernelSpec {
  /** cache key: must change whenever any compile-time parameter changes the WGSL */
  key: string;
  wgsl: string;
  entryPoint: string;
  /** @group(0) @binding(i) is bindings[i] */
  bindings: KernelBinding[];
  /** workgroup counts for dispatchWorkgroups */
  dispatch: [number, number, number];
  /** WGSL features the kernel needs, e.g. 'shader-f16' */
  features?: string[];
  /**
   * Other kernels computing the same values from the same bindings (other tilings), offered when
   * the adapter asks for them (AdapterTraits.tune): the runtime times them at first use and keeps
   * the fastest. Generated on demand, so an untuned program pays nothing for them.
   */
  variants?: () => KernelSpec[];
}

/** What the generators that choose a tiling per adapter need from it; the runtime's Gpu object satisfies it. */
export interface AdapterTraits {
  software: boolean;
  features: ReadonlySet<string>;
  info: { subgroupMinSize?: number; subgroupMaxSize?: number };
  /** the device's limits, where known: tilings that exceed them are not offered */
  limits?: Partial<Record<'maxComputeWorkgroupStorageSize' | 'maxComputeInvocationsPerWorkgroup' | 'maxComputeWorkgroupSizeX' | 'maxComputeWorkgroupSizeY', number>>;
  /** offer KernelSpec.variants for the runtime to time at first use (see runtime/tuning.ts) */
  tune?: boolean;
}

/** Splits a flat workgroup count into a grid that fits maxComputeWorkgroupsPerDimension. */
export function gridFor(workgroups: number, maxPerDim = 65535): [number, number, number] {
  if (workgroups <= maxPerDim) return [Math.max(1, workgroups), 1, 1];
  const y = Math.ceil(workgroups / maxPerDim);
  if (y <= maxPerDim) return [maxPerDim, y, 1];
  return [maxPerDim, maxPerDim, Math.ceil(y / maxPerDim)];
}

/** WGSL entry point of a kernel dispatched over a gridFor grid: wid, nwg and lid are in scope. */
export const GRID_MAIN = 'fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {';
/** WGSL: the flat workgroup index that gridFor split over up to three dimensions. */
export const GRID_WORKGROUP = 'wid.x + nwg.x * (wid.y + nwg.y * wid.z)';

/** A kernel whose invocations each own one index of [0, total), as `flatKernel` lays it out. */
export interface FlatKernelParams {
  key: string;
  /** bindings and helper functions, before the entry point */
  decls: string[];
  wg: number;
  total: number;
  /** the entry point's statements, with the index in scope */
  body: string[];
  bindings: KernelBinding[];
  /** the index's WGSL name (default 'flat') */
  index?: string;
  /** one workgroup per index instead of one invocation: the whole workgroup shares it */
  perWorkgroup?: boolean;
}

/** The one-index-per-invocation kernel shape the element-wise generators share: grid, bounds check, body. */
export function flatKernel(k: FlatKernelParams): KernelSpec {
  const index = k.index ?? 'flat';
  const wgsl = [
    ...k.decls,
    `@compute @workgroup_size(${k.wg})`,
    GRID_MAIN,
    `  let ${index} = ${k.perWorkgroup ? GRID_WORKGROUP : `(${GRID_WORKGROUP}) * ${k.wg}u + lid`};`,
    `  if (${index} >= ${k.total}u) { return; }`,
    ...k.body.map((l) => `  ${l}`),
    '}',
    '',
  ].join('\n');
  const workgroups = k.perWorkgroup ? k.total : Math.ceil(k.total / k.wg);
  return { key: k.key, wgsl, entryPoint: 'main', bindings: k.bindings, dispatch: gridFor(workgroups) };
}

/** A kernel's family, the leading word of its key (gemm, conv-direct, attention, ...): for reports. */
export const kernelFamily = (key: string) => (/^[a-z0-9-]+/i.exec(key)?.[0] ?? 'kernel').toLowerCase();
