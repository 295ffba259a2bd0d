// `vdm doctor`: reports the WebGPU adapter. The runtime module is loaded only for this command, so
// checking specs never touches the GPU stack, and a build without it fails with a clear line.

export async function doctor(): Promise<number> {
  let mod: { doctorCommand?: () => Promise<number> | number };
  try {
    mod = await import('../runtime/doctor.ts');
  } catch (err) {
    process.stderr.write(`vdm doctor: the runtime could not be loaded (${err instanceof Error ? err.message.split('\n')[0] : String(err)})\n`);
    return 1;
  }
  if (typeof mod.doctorCommand !== 'function') {
    process.stderr.write('vdm doctor: this build has no adapter report\n');
    return 1;
  }
  const code = await mod.doctorCommand();
  return typeof code === 'number' ? code : 0;
}
