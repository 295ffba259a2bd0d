// Option defaults that the argument definitions (main.ts) and the commands share.

/** The max relative error `vdm run --compare` accepts. */
export const DEFAULT_TOL = 1e-4;
