// Dawn's verdict on a kernel's WGSL alone, before any pipeline exists: errors and warnings
// (unused values, uniformity problems, ...) as readable lines. Empty means a clean compile.
import type { KernelSpec } from '../codegen/kernels/kernel.ts';
import { openGpu } from './gpu.ts';

export async function compilationMessages(spec: KernelSpec): Promise<string[]> {
  const { device } = await openGpu();
  const info = await device.createShaderModule({ code: spec.wgsl, label: spec.key }).getCompilationInfo();
  return info.messages.map((m) => `${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`);
}
