// Initialisations a parameter may ask for with `init:`. The runtime gives each its meaning:
// "default" is uniform in +-1/sqrt(fan_in) (as PyTorch layers start), "normal" is N(0, 0.02),
// "xavier_uniform" is what DiT uses for its linear layers, "zeros"/"ones" are constants.
export const INITS = ['default', 'normal', 'xavier_uniform', 'zeros', 'ones'] as const;
export type Init = (typeof INITS)[number];
