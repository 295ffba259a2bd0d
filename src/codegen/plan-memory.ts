// Memory planning: node values and scratch buffers whose lifetimes do not overlap share storage.
// A buffer lives from the first dispatch that binds it to the last; inputs, parameters and outputs
// live for the whole program and are never shared. Greedy over lifetimes in order of first use:
// each buffer takes the free slot that fits it most tightly, else grows the largest free slot,
// else opens a new one. Two buffers bound by one dispatch are both live there, so they never share
// a slot (WebGPU forbids binding one buffer twice when a binding writes it).
import type { LoweredGraph } from './lower.ts';

export interface MemoryPlan {
  /** element count of each slot (4-byte elements) */
  readonly slots: readonly number[];
  /** planned buffer name -> slot index */
  readonly slotOf: ReadonlyMap<string, number>;
  /** bytes of the planned buffers if each had its own storage, and with the plan */
  readonly unplannedBytes: number;
  readonly plannedBytes: number;
}

const BYTES = 4;

/** Lifetimes [first, last] (dispatch indices) of every buffer some dispatch binds. */
export function lifetimes(lowered: LoweredGraph): Map<string, [number, number]> {
  const live = new Map<string, [number, number]>();
  lowered.steps.forEach((s, i) => {
    for (const b of s.buffers) {
      const l = live.get(b);
      if (l) l[1] = i;
      else live.set(b, [i, i]);
    }
  });
  return live;
}

export function planMemory(lowered: LoweredGraph): MemoryPlan {
  const pinned = new Set([...lowered.outputs.values()].map((v) => v.buffer));
  const live = lifetimes(lowered);
  const planned = [...lowered.buffers.values()]
    .filter((b) => (b.role === 'value' || b.role === 'scratch') && !pinned.has(b.name) && live.has(b.name))
    .sort((a, b) => live.get(a.name)![0] - live.get(b.name)![0] || b.elements - a.elements || (a.name < b.name ? -1 : 1));
  const slots: number[] = [];
  const freeAfter: number[] = []; // the last dispatch that uses the slot's current tenant
  const slotOf = new Map<string, number>();
  for (const b of planned) {
    const [first, last] = live.get(b.name)!;
    let best = -1;
    let largest = -1;
    for (let s = 0; s < slots.length; s++) {
      if (freeAfter[s] >= first) continue;
      if (slots[s] >= b.elements && (best < 0 || slots[s] < slots[best])) best = s;
      if (largest < 0 || slots[s] > slots[largest]) largest = s;
    }
    const s = best >= 0 ? best : largest >= 0 ? largest : slots.length;
    if (s === slots.length) { slots.push(0); freeAfter.push(-1); }
    slots[s] = Math.max(slots[s], b.elements);
    freeAfter[s] = last;
    slotOf.set(b.name, s);
  }
  return {
    slots, slotOf,
    unplannedBytes: planned.reduce((n, b) => n + b.elements * BYTES, 0),
    plannedBytes: slots.reduce((n, e) => n + e * BYTES, 0),
  };
}

export interface PlannedMemory {
  /** parameters, each in its own buffer */
  readonly params: number;
  /** values and scratch, in the plan's shared slots */
  readonly activations: number;
  /** inputs, outputs and the buffers the plan leaves alone */
  readonly other: number;
  readonly total: number;
}

/** The device bytes a forward pass planned by `plan` allocates: what the runtime holds, by role. */
export function plannedMemory(lowered: LoweredGraph, plan: MemoryPlan): PlannedMemory {
  let params = 0, other = 0;
  for (const b of lowered.buffers.values()) {
    if (plan.slotOf.has(b.name)) continue;
    if (b.role === 'param') params += b.elements * BYTES;
    else other += b.elements * BYTES;
  }
  return { params, activations: plan.plannedBytes, other, total: params + plan.plannedBytes + other };
}
