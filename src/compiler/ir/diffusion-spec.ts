// The checked diffusion process, as stored in the graph IR.

export type ScheduleSpec =
  | { readonly kind: 'linear' | 'scaled_linear'; readonly beta_start: number; readonly beta_end: number; readonly steps: number }
  | { readonly kind: 'cosine'; readonly steps: number; readonly s: number };

export interface DiffusionSpec {
  readonly schedule: ScheduleSpec;
  readonly predict: { readonly target: 'epsilon' | 'v' | 'x0'; readonly learned_sigma: boolean };
  readonly loss: readonly { readonly term: 'mse' | 'vlb' | 'temporal_consistency'; readonly weight: number }[];
  readonly sampler: { readonly kind: 'ddpm'; readonly steps: number } | { readonly kind: 'ddim'; readonly steps: number; readonly eta: number };
  readonly guidance: { readonly kind: 'cfg'; readonly scale: number; readonly dropout: number } | null;
  /** The model input that carries the noisy sample x_t. */
  readonly noisy_input: string;
}
