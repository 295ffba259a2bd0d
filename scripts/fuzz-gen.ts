// The three fuzzers of the fuzz campaign (scripts/fuzz.ts), each a seeded function from a random
// source to a .vdm text:
//   grammar   whole files derived from grammar/vdm.ohm's rules, with the language's own names
//             (primitives, library blocks, builtins, input kinds, diffusion entries) and names in
//             scope, so most of them parse and many reach elaboration;
//   mutation  token-level mutants of the real specs and library (test/broken/mutate.ts);
//   splice    a piece of one real file put into another (at a token or line boundary).
import { mutate, tokenize } from '../test/broken/mutate.ts';

export type Rand = () => number;
export type FuzzerName = 'grammar' | 'mutation' | 'splice';
export const FUZZERS: readonly FuzzerName[] = ['grammar', 'mutation', 'splice'];

const pick = <T>(xs: readonly T[], r: Rand): T => xs[Math.floor(r() * xs.length)];
const chance = (p: number, r: Rand) => r() < p;
const int = (lo: number, hi: number, r: Rand) => lo + Math.floor(r() * (hi - lo + 1));
const times = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

const PRIMITIVES = ['linear', 'conv', 'attention', 'layernorm', 'rmsnorm', 'groupnorm', 'pool', 'upsample', 'mean',
  'silu', 'gelu', 'gelu_tanh', 'relu', 'sigmoid', 'tanh', 'exp', 'sqrt', 'abs', 'split', 'concat', 'patchify',
  'unpatchify', 'expand', 'slice', 'flip', 'sinusoidal', 'sincos', 'embed', 'gru', 'param', 'conv_transpose', 'flatten', 'unflatten'];
const BUILTINS = ['len', 'max', 'min', 'range', 'reversed', 'size', 'floor', 'ceil'];
const STD_FILES = ['attention', 'cond', 'conv', 'dit', 'layers', 'swin', 'temporal', 'unet'];
const STD_BLOCKS = ['spatial_attention', 'temporal_attention', 'full_attention', 'factorized_attention', 'windowed_attention',
  'cross_attention', 'film', 'adain', 'conv3d', 'conv3d_block', 'conv2plus1d', 'resblock', 'downsample2d', 'upsample2d',
  'timestep_embedder', 'class_embedder', 'patch_embed', 'dit_block', 'final_layer', 'modulate', 'mlp', 'swin_block',
  'swin_stage', 'patch_merging', 'patch_expanding', 'gru_propagation', 'hierarchical_temporal', 'time_embedding', 'unet_up',
  'stdit_block', 't2i_final_layer', 'cogvideox_patch_embed', 'cogvideox_norm_zero', 'cogvideox_block', 'cogvideox_final_layer',
  'cogvideox_ada_norm'];
const NAMED_ARGS = ['over', 'out', 'kernel', 'heads', 'window', 'patch', 'groups', 'eps', 'factor', 'axis', 'mode',
  'padding', 'stride', 'dim', 'ratio', 'shift', 'context', 'init', 'bias', 'causal', 'rel_bias', 'sizes', 'at', 'to', 'scale',
  'output_padding', 'dilation', 'order', 'hidden', 'per_frame', 'norm', 'qkv_bias', 'out_bias', 'dim_head', 'qk_norm', 'rope', 'key_mask', 'into'];
const INPUT_KINDS = ['video', 'timestep', 'label', 'image', 'text', 'trajectory', 'scalar', 'motion', 'tensor'];
const AXES = ['b', 'c', 't', 'h', 'w', 'l', 'n'];
const STRINGS = ['', 'same', 'valid', 'avg', 'max', 'nearest', 'linear', 'normal', 'zeros', 'ones', 'xavier_uniform', 'layer', 'rms', 'a\\"b', '\\n', 'é'];
const NUMBERS = ['0', '1', '2', '3', '4', '8', '16', '64', '0.5', '1e-5', '1000', '2147483648', '1e300', '99999999999'];
const DIFFUSION = [
  () => 'schedule linear(beta_start: 1e-4, beta_end: 0.02, steps: 1000)',
  () => 'schedule cosine(steps: 1000, s: 0.008)',
  () => 'schedule rectified_flow(steps: 1000, shift: 3.0)', () => 'schedule rectified_flow',
  () => 'predict epsilon', () => 'predict v', () => 'predict x0',
  () => 'loss mse', () => 'loss mse + 0.1 * temporal_consistency', () => 'loss vlb',
  () => 'sampler ddim(steps: 50, eta: 0)', () => 'sampler ddpm', () => 'sampler euler(steps: 30)',
  () => 'timesteps logit_normal(mean: 0.0, std: 1.0)', () => 'timesteps uniform', () => 'timesteps logit_normal(std: 0)',
  () => 'guidance 4.0',
];

/** A generator of one file, with the names in scope it has bound so far. */
class Gen {
  private names: string[] = [];
  private depth = 0;
  /** Primaries generated so far: past a budget, expressions stop branching (files stay a few KB). */
  private nodes = 0;
  constructor(private readonly r: Rand) {}

  private ident(): string {
    const r = this.r;
    if (this.names.length && chance(0.6, r)) return pick(this.names, r);
    if (chance(0.5, r)) return pick(AXES, r);
    if (chance(0.2, r)) return pick(['x', 's', 'y', 'z', 'cond', 'd', 'heads', 'depth', 'i', 'xs', 'patch'], r);
    return `v${int(0, 9, r)}`;
  }

  private bind(name: string): string {
    if (!this.names.includes(name)) this.names.push(name);
    return name;
  }

  /** Expr, level by level as the grammar nests them (an over-deep one ends in a primary). */
  expr(): string {
    const r = this.r;
    if (++this.depth > 6) {
      this.depth--;
      return this.primary(true);
    }
    const roll = r();
    const e = roll < 0.04 ? `if ${this.expr()} then ${this.expr()} else ${this.expr()}`
      : roll < 0.09 ? `${this.orExpr()}..${this.orExpr()}`
        : this.orExpr();
    this.depth--;
    return e;
  }

  private orExpr(): string {
    return this.branch(0.04) ? `${this.orExpr()} or ${this.andExpr()}` : this.andExpr();
  }

  private andExpr(): string {
    return this.branch(0.05) ? `${this.andExpr()} and ${this.notExpr()}` : this.notExpr();
  }

  private notExpr(): string {
    return this.branch(0.03) ? `not ${this.notExpr()}` : this.cmpExpr();
  }

  private cmpExpr(): string {
    const r = this.r;
    return this.branch(0.08) ? `${this.addExpr()} ${pick(['==', '!=', '<=', '>=', '<', '>'], r)} ${this.addExpr()}` : this.addExpr();
  }

  private addExpr(): string {
    const r = this.r;
    return this.branch(0.15) ? `${this.addExpr()} ${pick(['+', '-'], r)} ${this.mulExpr()}` : this.mulExpr();
  }

  private mulExpr(): string {
    const r = this.r;
    return this.branch(0.12) ? `${this.mulExpr()} ${pick(['*', '/', '%'], r)} ${this.unaryExpr()}` : this.unaryExpr();
  }

  private unaryExpr(): string {
    return this.branch(0.04) ? `-${this.unaryExpr()}` : this.powExpr();
  }

  private powExpr(): string {
    return this.branch(0.03) ? `${this.postfix()} ** ${this.unaryExpr()}` : this.postfix();
  }

  private postfix(): string {
    if (!this.branch(1)) return this.primary(true);
    if (chance(0.02, this.r)) return `${this.ident()}[${this.orExpr()}..${this.orExpr()}]`; // a tuple slice
    return chance(0.05, this.r) ? `${this.ident()}[${this.expr()}]` : this.primary(false);
  }

  /** Whether to branch, with probability p while the depth and size budgets last. */
  private branch(p: number): boolean {
    return this.depth <= 6 && this.nodes < 400 && chance(p, this.r);
  }

  private primary(leaf: boolean): string {
    const r = this.r;
    this.nodes++;
    const roll = r();
    if (leaf || roll < 0.3) {
      const k = r();
      if (k < 0.45) return this.ident();
      if (k < 0.8) return pick(NUMBERS, r);
      if (k < 0.9) return `"${pick(STRINGS, r)}"`;
      return pick(['true', 'false'], r);
    }
    if (roll < 0.75) return this.call();
    if (roll < 0.9) return this.tuple();
    return `(${this.expr()})`;
  }

  private arg(): string {
    const r = this.r;
    return chance(0.35, r) ? `${pick(NAMED_ARGS, r)}: ${this.expr()}` : this.expr();
  }

  call(): string {
    const r = this.r;
    const roll = r();
    const name = roll < 0.55 ? pick(PRIMITIVES, r) : roll < 0.8 ? pick(STD_BLOCKS, r) : roll < 0.95 ? pick(BUILTINS, r) : this.ident();
    const args = times(int(0, 4, r), () => this.arg());
    const naming = chance(0.1, r) ? ` as ${this.ident()}` : '';
    return `${name}(${args.join(', ')}${chance(0.1, r) && args.length ? ',' : ''})${naming}`;
  }

  private tuple(): string {
    const r = this.r;
    const n = int(0, 4, r);
    if (n === 0) return '()';
    const named = chance(0.4, r);
    const items = times(n, () => (named ? `${pick([...AXES, 'kernel', 'heads'], r)}: ${this.expr()}` : this.expr()));
    return n === 1 && !named ? `(${items[0]},)` : `(${items.join(', ')}${chance(0.2, r) ? ',' : ''})`;
  }

  private tensorType(): string {
    const r = this.r;
    const axes = times(int(0, 5, r), () => (chance(0.4, r) ? `${pick(AXES, r)}=${this.expr()}` : pick(AXES, r)));
    const head = chance(0.7, r) ? pick(INPUT_KINDS, r) : '';
    const options = chance(0.1, r) ? `(${times(int(1, 2, r), () => this.arg()).join(', ')})` : '';
    return `${head}[${axes.join(', ')}]${options}`;
  }

  private target(): string {
    const r = this.r;
    if (chance(0.1, r)) return `(${times(int(1, 3, r), () => this.bind(this.ident())).join(', ')})`;
    return this.bind(chance(0.5, r) ? this.ident() : pick(['z', 'y', 'h1', 'cond', 'xs', 's2'], r));
  }

  private body(inModel: boolean, indent: string): string {
    const stmts = times(int(1, 6, this.r), () => this.stmt(inModel, `${indent}  `));
    return `{\n${stmts.join('\n')}\n${indent}}`;
  }

  stmt(inModel: boolean, indent: string): string {
    const r = this.r;
    const roll = r();
    let s: string;
    if (this.depth > 3) s = `${this.target()} = ${this.expr()}`;
    else if (roll < 0.2 && (inModel ? chance(0.1, r) : chance(0.95, r))) s = `${this.target()} = ${this.expr()}`; // dims, input, output: models only
    else if (roll < 0.08) s = `dims ${times(int(1, 5, r), () => (chance(0.7, r) ? `${this.bind(pick(AXES, r))} = ${pick(NUMBERS, r)}` : this.bind(pick(AXES, r)))).join(', ')}`;
    else if (roll < 0.14) s = `input ${this.bind(pick(['x', 's', 'y', 'img', 'txt'], r))} : ${this.tensorType()}`;
    else if (roll < 0.2) s = `output ${this.bind(pick(['eps', 'out', 'o'], r))}${chance(0.4, r) ? ` : ${this.tensorType()}` : ''} = ${this.expr()}`;
    else if (roll < 0.3) s = `let ${times(int(1, 3, r), () => `${this.target()} = ${this.expr()}`).join(', ')}`;
    else if (roll < 0.4) {
      this.depth++;
      s = `for ${this.bind(pick(['i', 'j', 'k'], r))} in ${this.expr()}${chance(0.3, r) ? ` as ${this.ident()}` : ''} ${this.body(inModel, indent)}`;
      this.depth--;
    } else if (roll < 0.45) {
      this.depth++;
      s = `repeat ${this.expr()}${chance(0.3, r) ? ` as ${this.ident()}` : ''} ${this.body(inModel, indent)}`;
      this.depth--;
    } else if (roll < 0.52) {
      this.depth++;
      s = `if ${this.expr()} ${this.body(inModel, indent)}${chance(0.4, r) ? ` else ${chance(0.3, r) ? `if ${this.expr()} ` : ''}${this.body(inModel, indent)}` : ''}`;
      this.depth--;
    } else if (roll < 0.58) s = `assert ${this.expr()}${chance(0.5, r) ? `, "${pick(STRINGS, r)}"` : ''}`;
    else if (roll < 0.62 && (!inModel || chance(0.1, r))) s = `return ${this.expr()}`;
    else s = `${this.target()}${chance(0.15, r) ? ` : ${this.tensorType()}` : ''} = ${this.expr()}`;
    return `${indent}${s}`;
  }

  private block(): string {
    const r = this.r;
    const saved = this.names;
    this.names = [];
    const params = times(int(0, 4, r), () => {
      const p = this.bind(pick(['x', 'cond', 'heads', 'out', 'dim', 'n', 'k', 'over'], r));
      return chance(0.3, r) ? `${p} = ${this.expr()}` : p;
    });
    const text = `block ${chance(0.15, r) ? pick(STD_BLOCKS, r) : pick(['my_block', 'step', 'f', 'g2'], r)}(${params.join(', ')}) ${this.body(false, '')}`;
    this.names = saved;
    return text;
  }

  private model(): string {
    const r = this.r;
    const head: string[] = [];
    if (chance(0.85, r)) head.push(`  dims ${AXES.slice(0, int(1, 5, r)).map((a) => `${this.bind(a)} = ${pick(['1', '2', '2', '4', '4', '8', '3', '0', '16'], r)}`).join(', ')}`);
    if (chance(0.85, r)) head.push(`  input ${this.bind('x')} : video[b, c, t, h, w]`);
    if (chance(0.4, r)) head.push(`  input ${this.bind('s')} : timestep[b]`);
    const body = times(int(0, 8, r), () => this.stmt(true, '  '));
    const out = chance(0.85, r) ? [`  output ${this.bind(pick(['eps', 'out'], r))}${chance(0.3, r) ? ' : video[b, c, t, h, w]' : ''} = ${chance(0.5, r) ? 'x' : this.expr()}`] : [];
    return `model ${pick(['M', 'Tiny', 'DiT', 'model_1'], r)} {\n${[...head, ...body, ...out].join('\n')}\n}`;
  }

  file(): string {
    const r = this.r;
    const items: string[] = [];
    const all = chance(0.6, r);
    for (const f of STD_FILES) if (all || chance(0.12, r)) items.push(`import "std/${f}.vdm"`);
    if (chance(0.05, r)) items.push(`import "${pick(['../x.vdm', '..\\\\x', '/etc/passwd', 'std/none.vdm', 'self.vdm', ''], r)}"`);
    for (let i = int(0, 2, r); i > 0; i--) items.push(`let ${this.target()} = ${this.expr()}`);
    for (let i = int(0, 2, r); i > 0; i--) items.push(this.block());
    if (chance(0.9, r)) items.push(this.model());
    if (chance(0.1, r)) items.push(this.model());
    if (chance(0.5, r)) items.push(`diffusion {\n${times(int(0, 5, r), () => `  ${pick(DIFFUSION, r)()}`).join('\n')}\n}`);
    const order = chance(0.1, r) ? items.sort(() => r() - 0.5) : items;
    const text = `${order.join('\n\n')}\n`;
    // A few files also get comments and odd spacing between tokens.
    return chance(0.1, r) ? text.replace(/ /g, () => pick([' ', ' ', ' ', '  ', ' /* c */ ', '\t'], r)) : text;
  }
}

/** A file derived from the grammar's rules. */
export function grammarCase(r: Rand): string {
  return new Gen(r).file();
}

/** A mutant of `source` and its steps. */
export function mutationCase(source: string, r: Rand): { source: string; steps: string[] } {
  return mutate(source, r);
}

/** `into` with a piece of `from` spliced in: at token boundaries or at line boundaries. */
export function spliceCase(into: string, from: string, r: Rand): { source: string; step: string } {
  // Whole lines keep the syntax more often, so most splices reach the checks after parsing.
  if (chance(0.75, r)) {
    const a = into.split('\n'), b = from.split('\n');
    const i = int(0, a.length, r), j = int(0, b.length - 1, r), n = int(1, Math.min(12, b.length - j), r);
    const cut = chance(0.3, r) ? int(0, Math.min(8, a.length - i), r) : 0;
    a.splice(i, cut, ...b.slice(j, j + n));
    return { source: a.join('\n'), step: `lines ${j + 1}..${j + n} of the other file over ${cut} lines at line ${i + 1}` };
  }
  const a = tokenize(into), b = tokenize(from);
  const i = int(0, a.length, r), j = int(0, Math.max(0, b.length - 1), r), n = int(1, Math.min(60, b.length - j), r);
  const cut = chance(0.5, r) ? int(0, Math.min(60, a.length - i), r) : 0;
  a.splice(i, cut, ...b.slice(j, j + n));
  return { source: a.map((t) => t.text).join(''), step: `tokens ${j}..${j + n} of the other file over ${cut} tokens at token ${i}` };
}
