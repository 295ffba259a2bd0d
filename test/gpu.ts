// Tests that need a WebGPU adapter are declared with `gpuTest` instead of uvu's `test`. The runner
// (scripts/run-tests.mjs) opens the adapter once before the suites start; where there is none it
// says so once, with how to get one, and sets VDM_TEST_GPU=0 so that these tests are skipped
// rather than failing one by one. VDM_REQUIRE_GPU=1 (CI) turns a missing adapter into a failure.
import { test } from 'uvu';

/** False when the runner found no adapter (VDM_TEST_GPU=0); run alone under uvu, assumed true. */
export const hasGpu = process.env.VDM_TEST_GPU !== '0';

/** uvu's `test`, skipped when there is no adapter. */
export const gpuTest: typeof test.skip = hasGpu ? test : test.skip;
