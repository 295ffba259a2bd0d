import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDimArgs } from '../../src/cli/dim-args.ts';
import { renderTable } from '../../src/cli/table.ts';
import { grouped, humanBytes, humanCount } from '../../src/cli/units.ts';

test('human counts: 675.1M, 118.6G, small numbers as they are', () => {
  assert.is(humanCount(675_129_632), '675.1M');
  assert.is(humanCount(118_621_421_568), '118.6G');
  assert.is(humanCount(1_500), '1.5K');
  assert.is(humanCount(999), '999');
  assert.is(humanCount(2.5e15), '2.5P');
});

test('human bytes in binary units; grouped digits', () => {
  assert.is(humanBytes(512), '512B');
  assert.is(humanBytes(16384), '16.0KiB');
  assert.is(humanBytes(3 * 1024 ** 3), '3.0GiB');
  assert.is(grouped(674834720), '674,834,720');
  assert.is(grouped(12), '12');
});

test('tables align text left and numbers right', () => {
  assert.is(renderTable(['name', 'n'], [['a', '1'], ['bbb', '22']], new Set([1])), 'name   n\n----  --\na      1\nbbb   22');
});

test('--dim parsing: NAME=SIZE, repeated, malformed', () => {
  assert.equal(parseDimArgs(['h=32', 'w=16']).dims, { h: 32, w: 16 });
  assert.equal(parseDimArgs(undefined).dims, {});
  for (const bad of [['h'], ['h=0'], ['h=1.5'], ['=3'], ['h=2', 'h=4']]) {
    const r = parseDimArgs(bad);
    assert.is(r.errors.length, 1, bad.join(' '));
    assert.is(r.errors[0].code, 'VDM070');
  }
});

test('--dim names that are also Object.prototype names are names like any other', () => {
  for (const name of ['__proto__', 'toString', 'constructor', 'hasOwnProperty']) {
    const r = parseDimArgs([`${name}=4`]);
    assert.equal(r.errors, [], name);
    assert.ok(Object.hasOwn(r.dims, name), name);
    assert.is(r.dims[name], 4, name);
    assert.equal(Object.keys(r.dims), [name]);
    const twice = parseDimArgs([`${name}=4`, `${name}=5`]);
    assert.equal(twice.errors.map((e) => e.message), [`--dim ${name} is given twice`]);
  }
});

test.run();
