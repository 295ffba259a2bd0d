// Finding a WebGPU adapter through Dawn (the `webgpu` package): a hardware adapter when one
// exists, else a software one (Mesa lavapipe / llvmpipe, SwiftShader).
import { createRequire } from 'node:module';
import { quietDiscovery } from './quiet.ts';

export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

export const INSTALL_HINT =
  'On Debian/Ubuntu, `sudo bash scripts/install-gpu.sh` (as root) installs a software adapter ' +
  '(Mesa >= 25 lavapipe from bookworm-backports; Dawn rejects the Mesa 22 of plain bookworm); ' +
  'elsewhere install a Vulkan driver for your GPU. `vdm doctor` checks again.';

/** VDM_ADAPTER: `auto` (default), `hardware`, `software`, or `none` (acts as if no adapter exists). */
export type AdapterMode = 'auto' | 'hardware' | 'software' | 'none';

export function adapterModeFromEnv(env: NodeJS.ProcessEnv = process.env): AdapterMode {
  const v = (env.VDM_ADAPTER ?? 'auto').trim().toLowerCase() || 'auto';
  if (v === 'auto' || v === 'hardware' || v === 'software' || v === 'none') return v;
  throw new Error(`VDM_ADAPTER must be one of auto, hardware, software, none (got '${env.VDM_ADAPTER}')`);
}

/** VDM_TUNE: `auto` (default: tune on hardware adapters), `on`, or `off`. */
export function tuneFromEnv(software: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.VDM_TUNE ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return !software;
  if (['1', 'on', 'true', 'yes'].includes(v)) return true;
  if (['0', 'off', 'false', 'no'].includes(v)) return false;
  throw new Error(`VDM_TUNE must be one of auto, on, off (got '${env.VDM_TUNE}')`);
}

/** Software rasterizers: correct but one to two orders of magnitude slower than a GPU. */
export function isSoftwareAdapter(info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }): boolean {
  if (info.isFallbackAdapter) return true;
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  return /llvmpipe|lavapipe|swiftshader|\bsoftware\b/i.test(text);
}

// dawn.node crashes or hangs when the object returned by create() is garbage-collected,
// so it is held here for the life of the process.
let dawnGpu: GPU | undefined;

/** The process-wide Dawn entry point; also installs the WebGPU globals (GPUBufferUsage, ...). */
export function loadDawn(): GPU {
  if (dawnGpu) return dawnGpu;
  const require = createRequire(import.meta.url);
  const { create, globals } = require('webgpu') as { create(opts: string[]): GPU; globals: object };
  Object.assign(globalThis, globals);
  // Browsers coarsen timestamps against timing attacks; a local compiler wants real per-kernel times.
  dawnGpu = create(['disable-dawn-features=timestamp_quantization']);
  (globalThis as Record<string, unknown>).__vdmDawn = dawnGpu;
  return dawnGpu;
}

export interface ChosenAdapter {
  adapter: GPUAdapter;
  software: boolean;
}

/**
 * Picks an adapter from `gpu` (injectable, so the no-adapter path is testable):
 * the first hardware adapter among the preferences, else the first software one.
 */
export async function acquireAdapter(gpu: Pick<GPU, 'requestAdapter'>, mode: AdapterMode = 'auto'): Promise<ChosenAdapter> {
  if (mode === 'none') throw new NoAdapterError(`no WebGPU adapter (VDM_ADAPTER=none is set). ${INSTALL_HINT}`);
  const options: GPURequestAdapterOptions[] = [
    { powerPreference: 'high-performance' }, { powerPreference: 'low-power' }, { forceFallbackAdapter: true },
  ];
  let software: GPUAdapter | undefined;
  let first = true;
  for (const opts of options) {
    // Dawn enumerates adapters (and prints its limit warnings) on the first request only.
    const adapter = first ? await quietDiscovery(() => gpu.requestAdapter(opts)) : await gpu.requestAdapter(opts);
    first = false;
    if (!adapter) continue;
    const soft = isSoftwareAdapter(adapter.info);
    if (!soft && mode !== 'software') return { adapter, software: false };
    if (soft) software ??= adapter;
  }
  if (software && mode !== 'hardware') return { adapter: software, software: true };
  const what = mode === 'hardware' ? 'no hardware WebGPU adapter (VDM_ADAPTER=hardware is set)' : 'no WebGPU adapter found';
  throw new NoAdapterError(`${what}. ${INSTALL_HINT}`);
}
