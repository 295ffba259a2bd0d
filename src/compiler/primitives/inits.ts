// Initialisations a parameter may ask for with `init:`. The runtime gives each its meaning:
// "default" is uniform in +-1/sqrt(fan_in) (as PyTorch layers start), "normal" is N(0, 0.02),
// "scaled_normal" N(0, 1/fan_in) (PixArt's scale_shift_table: randn / sqrt(c)), "xavier_uniform"
// is what DiT uses for its linear layers, "zeros"/"ones" are constants.
export const INITS = ['default', 'normal', 'scaled_normal', 'xavier_uniform', 'zeros', 'ones'] as const;
export type Init = (typeof INITS)[number];
