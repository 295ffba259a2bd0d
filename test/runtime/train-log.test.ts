// The training log (JSON Lines, cut back on resume), the SVG loss curve and the progress reporter
// (plain lines without a terminal, a bar with one), all with injected clocks: no timing dependence.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emaSmooth, lossCurveSvg, niceTicks, tickLabel, writeLossCurve } from '../../src/runtime/loss-curve.ts';
import { createProgress, formatDuration } from '../../src/runtime/progress.ts';
import { readTrainLog, TrainLog, truncateTrainLog, type TrainRecord } from '../../src/runtime/train-log.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-log-'));
let files = 0;
const fresh = (ext = 'jsonl') => path.join(dir, `f${files++}.${ext}`);

const record = (step: number, extra: Record<string, number> = {}): TrainRecord =>
  ({ step, loss: 1 / step, grad_norm: 0.5, lr: 1e-4, seconds: step * 0.25, ...extra });

test('log: one JSON object per line, core fields first, non-finite numbers as null', () => {
  const file = fresh();
  const log = TrainLog.open(file);
  log.append(record(1, { loss_mse: 0.9 }));
  log.append({ ...record(2), loss: NaN });
  log.sync();
  log.close();
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.is(lines.length, 3);
  assert.is(lines[2], '');
  assert.is(lines[0], '{"step":1,"loss":1,"grad_norm":0.5,"lr":0.0001,"seconds":0.25,"loss_mse":0.9}');
  assert.is(lines[1], '{"step":2,"loss":null,"grad_norm":0.5,"lr":0.0001,"seconds":0.5}');
  const back = readTrainLog(file);
  assert.equal(back.map((r) => r.step), [1, 2]);
  assert.ok(Number.isNaN(back[1].loss));
  assert.is(back[0].loss_mse, 0.9);
  assert.equal(readTrainLog(path.join(dir, 'none.jsonl')), []);
});

test('log: resuming cuts the records after the resumed step and a torn last line', () => {
  const file = fresh();
  const log = TrainLog.open(file);
  for (let s = 1; s <= 10; s++) log.append(record(s));
  log.close();
  fs.appendFileSync(file, '{"step":11,"loss":0.0'); // a crash mid-write
  assert.equal(readTrainLog(file).map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the reader skips a torn last line');

  const resumed = TrainLog.open(file, { resumeStep: 6 });
  assert.is(resumed.dropped, 5, 'steps 7..10 and the torn line');
  assert.throws(() => resumed.append(record(6)), /step 6 does not follow step 6/);
  resumed.append(record(7, { resumed: 1 }));
  resumed.close();
  const steps = readTrainLog(file).map((r) => r.step);
  assert.equal(steps, [1, 2, 3, 4, 5, 6, 7]);
  assert.is(new Set(steps).size, steps.length, 'no duplicates');
  assert.is(readTrainLog(file)[6].resumed, 1);
  assert.ok(fs.readFileSync(file, 'utf8').endsWith('}\n'));

  // A new run (resume step 0) starts an empty log; a missing file is no error.
  assert.equal(truncateTrainLog(file, 0), { kept: 0, dropped: 7 });
  assert.is(fs.statSync(file).size, 0);
  assert.equal(truncateTrainLog(path.join(dir, 'absent.jsonl'), 3), { kept: 0, dropped: 0 });
  // A damaged line in the middle is reported with its line number.
  const bad = fresh();
  fs.writeFileSync(bad, '{"step":1,"loss":1}\nnot json\n{"step":3,"loss":1}\n');
  assert.throws(() => readTrainLog(bad), /:2: not a training record: not json/);
});

/** Checks that tags nest and close (a small XML well-formedness check) and returns the tag names. */
function xmlTags(svg: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const body = svg.replace(/<\?xml[^>]*\?>/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    if (close) assert.is(stack.pop(), name, `</${name}> closes the open tag`);
    else { names.push(name); if (!selfClose) stack.push(name); }
  }
  assert.equal(stack, [], 'every tag closed');
  // Nothing that looks like a tag was skipped by the pattern, and text has no raw '<' or '&'.
  const stripped = body.replace(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g, '');
  assert.not.match(stripped, /<|&(?!(lt|gt|amp|quot|apos);)/);
  return names;
}

const pathPoints = (svg: string, cls: string) => {
  const d = new RegExp(`<path class="${cls}" d="([^"]*)"`).exec(svg)![1];
  return d.split(' ').map((p) => p.slice(1).split(',').map(Number));
};

test('loss curve: well-formed SVG with raw and smoothed paths of N points, log scale past a decade', () => {
  const points = Array.from({ length: 50 }, (_, i) => ({ step: (i + 1) * 10, loss: 2 * Math.exp(-i / 8) + 0.01 }));
  const svg = lossCurveSvg(points, { spec: 'Tiny <v2> & co' });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  const tags = xmlTags(svg);
  assert.is(tags[0], 'svg');
  assert.ok(tags.includes('text') && tags.includes('line'));
  assert.match(svg, /Tiny &lt;v2&gt; &amp; co: training loss/);
  const raw = pathPoints(svg, 'raw'), smooth = pathPoints(svg, 'smoothed');
  assert.is(raw.length, 50);
  assert.is(smooth.length, 50);
  for (const [x, y] of [...raw, ...smooth]) assert.ok(x >= 64 && x <= 700 && y >= 40 && y <= 354, `${x},${y} inside the plot`);
  // x increases with the step; the loss falls, so y (downwards) grows.
  assert.ok(raw.every((p, i) => i === 0 || p[0] > raw[i - 1][0]));
  assert.ok(raw[49][1] > raw[0][1]);
  assert.match(svg, /loss \(log scale\)/, '2.01 -> ~0.012 spans two decades');
  assert.match(svg, />1<\/text>/);
  assert.match(svg, />0\.01<\/text>/);

  // Within a decade the axis is linear; NaN losses are left out.
  const flat = lossCurveSvg([{ step: 1, loss: 0.5 }, { step: 2, loss: NaN }, { step: 3, loss: 0.3 }], { spec: 'T' });
  xmlTags(flat);
  assert.not.match(flat, /log scale/);
  assert.is(pathPoints(flat, 'raw').length, 2);
  // No data yet still makes a valid picture; many points are thinned to the envelope.
  xmlTags(lossCurveSvg([], { spec: 'T' }));
  const many = Array.from({ length: 10000 }, (_, i) => ({ step: i + 1, loss: 1 + (i % 7) / 10 }));
  const thin = lossCurveSvg(many, { spec: 'T', maxPoints: 1000 });
  assert.ok(pathPoints(thin, 'raw').length <= 1000);
  assert.ok(pathPoints(thin, 'smoothed').length <= 1001);
  const file = fresh('svg');
  writeLossCurve(file, points, { spec: 'Tiny' });
  assert.is(fs.readFileSync(file, 'utf8'), lossCurveSvg(points, { spec: 'Tiny' }));
});

test('loss curve helpers: ticks at 1-2-5 steps, short labels, debiased EMA', () => {
  assert.equal(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.equal(niceTicks(10, 300, 6), [50, 100, 150, 200, 250, 300]);
  assert.equal([1500, 20000, 0.25, 0.0001, 0.00015, 3e6].map(tickLabel), ['1500', '20k', '0.25', '1e-4', '1.5e-4', '3M']);
  assert.equal(emaSmooth([2, 2, 2], 0.9).map((x) => Number(x.toFixed(12))), [2, 2, 2], 'no pull towards zero at the start');
  assert.equal(emaSmooth([1, 3], 0), [1, 3]);
});

/** A stream that records what is written, and a clock that moves only when told. */
function harness(isTTY = false) {
  const chunks: string[] = [];
  const stream = { isTTY, columns: 120, write: (s: string) => { chunks.push(s); return true; } };
  let t = 1000;
  return { stream, text: () => chunks.join(''), now: () => t, advance: (ms: number) => { t += ms; } };
}

test('progress without a terminal: a plain line every N steps or S seconds, then a summary', () => {
  const h = harness();
  const p = createProgress({ total: 300, stream: h.stream, now: h.now, everySteps: 100, everySeconds: 60 });
  for (let s = 1; s <= 120; s++) { h.advance(320); p.update(s, { loss: 0.4123 }); }
  p.log('saved step-000120.safetensors');
  h.advance(60_000); // a slow step: the time rule prints even before 100 more steps
  p.update(121, { loss: 0.41, lr: 1e-4 });
  p.finish();
  assert.equal(h.text().split('\n'), [
    'step 100/300  loss 0.4123  3.1 steps/s  ETA 1m04s',
    'saved step-000120.safetensors',
    'step 121/300  loss 0.4100  lr 1.00e-4  0.29 steps/s  ETA 10m20s',
    'done: 121 steps in 1m38s (1.2 steps/s), final loss 0.4100',
    '',
  ]);
  // A resumed run counts only its own steps; the last step always prints.
  const r = harness();
  const q = createProgress({ total: 10, startStep: 8, stream: r.stream, now: r.now, everySteps: 100 });
  r.advance(500); q.update(9, { loss: 1 });
  r.advance(500); q.update(10, { loss: 0.5 });
  q.finish();
  assert.equal(r.text().split('\n'), ['step 10/10  loss 0.5000  2.0 steps/s  ETA 0s', 'done: 2 steps in 1s (2.0 steps/s), final loss 0.5000', '']);
  assert.equal([0.4, 59.6, 125, 3725, 200000, NaN].map(formatDuration), ['0s', '1m00s', '2m05s', '1h02m', '2d07h', '?']);
});

test('progress on a terminal: a cli-progress bar with step, loss, rate and ETA', () => {
  const h = harness(true);
  const p = createProgress({ total: 10, stream: h.stream, now: h.now });
  for (let s = 1; s <= 10; s++) { h.advance(250); p.update(s, { loss: 1 / s }); }
  p.log('saved step-000010.safetensors');
  p.finish();
  p.log('after the bar');
  const text = h.text().replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
  assert.match(text, /step 10\/10 \[=+\] loss 0\.1000  4\.0 steps\/s  ETA 0s/);
  assert.match(text, /done: 10 steps in 3s \(4\.0 steps\/s\), final loss 0\.1000\n/);
  assert.match(text, /saved step-000010\.safetensors\n/);
  assert.ok(text.endsWith('after the bar\n'));
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
