// Budgets every elaboration runs under, so that no input can hang or exhaust the compiler.
import type { Diagnostic } from '../ir/diagnostics.ts';

export const LIMITS = {
  /** Iterations of one loop (VDM040). */
  loopIterations: 10_000,
  /** Statements, calls and loop iterations of one whole elaboration (VDM040). */
  steps: 400_000,
  /** Graph nodes (VDM043). */
  nodes: 200_000,
  /** Largest dim or axis size (VDM041). */
  size: 2 ** 31,
  /** Most elements in one tensor (VDM041). */
  elements: 2 ** 40,
  /** Items in one tuple (VDM041): tuples are small lists of settings and skips. */
  tupleItems: 100_000,
  /**
   * Size of one compile-time value (VDM041): tuple items, nested ones counted as often as they
   * occur, plus the characters of its strings. A value doubled in a loop reaches it in a few steps.
   */
  valueSize: 100_000,
  /** Tuples nested in tuples (VDM041). */
  valueDepth: 256,
  /** Items and characters built, copied or compared over one whole elaboration (VDM040). */
  work: 20_000_000,
  /** Nested block calls (VDM042). */
  recursion: 64,
  /** Bytes of one spec file, checked before it is read or parsed (VDM002). */
  fileBytes: 1024 * 1024,
  /** Nested imports (VDM004). */
  importDepth: 32,
  /** Distinct diagnostics kept from one elaboration (more say nothing new and cost time and memory). */
  diagnostics: 1000,
} as const;

/** Stops the whole elaboration: a budget ran out and going on would only repeat the problem. */
export class Abort extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}
