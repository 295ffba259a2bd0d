// .mp4/.webm (and other containers) through the ffmpeg executable: it scales and crops to the
// target size itself and pipes raw rgb24 frames, so a long or large video never sits in memory.
import { spawn, spawnSync } from 'node:child_process';
import { DataError, MissingToolError } from './errors.ts';

export const FFMPEG_EXTENSIONS = ['.mp4', '.webm', '.mov', '.mkv', '.avi', '.m4v'];

const INSTALL = 'install ffmpeg (Debian/Ubuntu: `apt-get install ffmpeg`, macOS: `brew install ffmpeg`), '
  + 'or convert the videos to .gif or to folders of PNG frames';

const available = new Map<string, boolean>();

/** Whether `exe` runs (remembered per executable and PATH: every open would otherwise spawn it). */
export function ffmpegAvailable(exe = 'ffmpeg'): boolean {
  const key = `${exe}\0${process.env.PATH ?? ''}`;
  let ok = available.get(key);
  if (ok === undefined) available.set(key, ok = !spawnSync(exe, ['-version'], { stdio: 'ignore' }).error);
  return ok;
}

export function missingFfmpeg(file: string, exe = 'ffmpeg'): MissingToolError {
  return new MissingToolError(file, exe, INSTALL);
}

/**
 * The first `count` frames of a video, cover-scaled (area filter) and center-cropped to h×w, as
 * RGB values in [0, 255]. Fewer frames come back when the video is shorter.
 */
export function ffmpegFrames(file: string, count: number, h: number, w: number, exe = 'ffmpeg'): Promise<Float32Array[]> {
  // Scale by the larger ratio (rounded up, so the crop always fits), then keep the middle h×w.
  const s = `max(${h}/ih\\,${w}/iw)`;
  const filter = `scale=w='ceil(iw*${s})':h='ceil(ih*${s})':flags=area,crop=${w}:${h}`;
  const args = ['-nostdin', '-v', 'error', '-i', file, '-an', '-vf', filter, '-frames:v', String(count), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  const frameBytes = h * w * 3;
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-2000); });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? missingFfmpeg(file, exe) : new DataError(file, `could not run ${exe} (${err.message})`, INSTALL, false));
    });
    child.on('close', (code) => {
      if (code !== 0) {
        const why = stderr.trim().split('\n').pop() || `exit status ${code}`;
        reject(new DataError(file, `ffmpeg could not decode it (${why})`, 'check that it plays and re-encode it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`), or remove it'));
        return;
      }
      const bytes = Buffer.concat(chunks);
      const frames: Float32Array[] = [];
      for (let f = 0; f < Math.min(count, Math.floor(bytes.length / frameBytes)); f++) {
        frames.push(Float32Array.from(bytes.subarray(f * frameBytes, (f + 1) * frameBytes)));
      }
      resolve(frames);
    });
  });
}
