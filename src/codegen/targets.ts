// Compile targets: named adapter traits, so kernels can be generated (and their files compared byte
// for byte) without opening an adapter. A live adapter passes its own traits instead.
import type { AdapterTraits } from './kernels/kernel.ts';

export const TARGETS = ['gpu', 'software'] as const;
export type Target = (typeof TARGETS)[number];

export const isTarget = (name: string): name is Target => (TARGETS as readonly string[]).includes(name);

/** What each target tells the kernel generators: a GPU gets workgroup-memory tiles, a CPU adapter SIMD lanes. */
export const TARGET_TRAITS: Record<Target, AdapterTraits> = {
  gpu: { software: false, features: new Set(['subgroups']), info: {} },
  software: { software: true, features: new Set(['subgroups']), info: { subgroupMinSize: 8, subgroupMaxSize: 8 } },
};
