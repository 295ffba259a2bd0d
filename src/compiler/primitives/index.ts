// The registry of primitives callable by name, and of the operators behind + - * / and unary minus.
import { add } from './add.ts';
import { attention } from './attention.ts';
import { concat } from './concat.ts';
import { conv } from './conv.ts';
import { convTranspose } from './conv-transpose.ts';
import { div } from './div.ts';
import type { BinaryOperator } from './elementwise.ts';
import { embed } from './embed.ts';
import { expand } from './expand.ts';
import { flatten } from './flatten.ts';
import { flip } from './flip.ts';
import { groupnorm } from './groupnorm.ts';
import { gru } from './gru.ts';
import { layernorm } from './layernorm.ts';
import { linear } from './linear.ts';
import { mean } from './mean.ts';
import { mul } from './mul.ts';
import { param } from './param.ts';
import { patchify } from './patchify.ts';
import { pool } from './pool.ts';
import { rmsnorm } from './rmsnorm.ts';
import { sincos } from './sincos.ts';
import { sinusoidal } from './sinusoidal.ts';
import { slice } from './slice.ts';
import { split } from './split.ts';
import { sub } from './sub.ts';
import type { Primitive } from './types.ts';
import { unaryPrimitive } from './unary.ts';
import { unflatten } from './unflatten.ts';
import { unpatchify } from './unpatchify.ts';
import { upsample } from './upsample.ts';

export const PRIMITIVES: ReadonlyMap<string, Primitive> = new Map([
  linear, conv, convTranspose, attention, layernorm, rmsnorm, groupnorm, pool, upsample, mean,
  // the elementwise functions callable by name (each one a record in codegen/kernels/functions.ts)
  ...(['silu', 'gelu', 'gelu_tanh', 'relu', 'sigmoid', 'tanh', 'exp', 'sqrt', 'abs'] as const).map((f) => unaryPrimitive(f)),
  split, concat, patchify, unpatchify, expand, slice, flip, flatten, unflatten, sinusoidal, sincos, embed, gru, param,
].map((p) => [p.name, p]));

export const BINARY_OPERATORS: ReadonlyMap<string, BinaryOperator> = new Map([add, sub, mul, div].map((o) => [o.symbol, o]));

export const NEGATE: Primitive = unaryPrimitive('neg');

/** The operators by the op name their graph nodes carry (add, sub, mul, div). */
export const BINARY_BY_OP: ReadonlyMap<string, BinaryOperator> = new Map([...BINARY_OPERATORS.values()].map((o) => [o.name, o]));

/** The primitive behind a graph node's op: a named primitive, or unary minus. */
export const primitiveOf = (op: string): Primitive | undefined => (op === NEGATE.name ? NEGATE : PRIMITIVES.get(op));
