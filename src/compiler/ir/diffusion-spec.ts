// The checked diffusion process, as stored in the graph IR.

export type ScheduleSpec =
  | { readonly kind: 'linear' | 'scaled_linear'; readonly beta_start: number; readonly beta_end: number; readonly steps: number }
  | { readonly kind: 'cosine'; readonly steps: number; readonly s: number }
  /** continuous t in (0, 1] at `steps` levels t_k = k / steps, shifted t' = shift t / (1 + (shift − 1) t); x_t = (1 − t') x0 + t' ε */
  | { readonly kind: 'rectified_flow'; readonly steps: number; readonly shift: number };

export interface DiffusionSpec {
  readonly schedule: ScheduleSpec;
  readonly predict: { readonly target: 'epsilon' | 'v' | 'x0'; readonly learned_sigma: boolean };
  readonly loss: readonly { readonly term: 'mse' | 'vlb' | 'temporal_consistency'; readonly weight: number }[];
  readonly sampler: { readonly kind: 'ddpm'; readonly steps: number } | { readonly kind: 'ddim'; readonly steps: number; readonly eta: number }
    | { readonly kind: 'euler'; readonly steps: number };
  readonly guidance: { readonly kind: 'cfg'; readonly scale: number; readonly dropout: number } | null;
  /**
   * How training draws each sample's level k in [0, steps): uniformly, or k = floor(steps ·
   * sigmoid(mean + std · z)) with z ~ N(0, 1) (logit-normal, SD3 and Open-Sora 1.2's choice for
   * rectified flow). Absent in graphs written before it existed: uniform.
   */
  readonly timesteps?: { readonly kind: 'uniform' } | { readonly kind: 'logit_normal'; readonly mean: number; readonly std: number };
  /** The model input that carries the noisy sample x_t. */
  readonly noisy_input: string;
}
