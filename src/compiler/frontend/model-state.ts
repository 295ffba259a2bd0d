// What a model body declares while it runs: dims, inputs, outputs.
import type { GraphInput } from '../ir/graph.ts';

export interface ModelState {
  readonly dims: Map<string, number>;
  readonly overrides: ReadonlyMap<string, number>;
  readonly usedOverrides: Set<string>;
  readonly inputs: GraphInput[];
  readonly outputs: { name: string; node: number }[];
  /** Names of every output statement run, including ones whose value was an error. */
  readonly outputNames: Set<string>;
}
