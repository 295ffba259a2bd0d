// Did-you-mean hints: near names only, where "near" grows with the length of the names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closest, didYouMean } from '../../src/compiler/ir/suggest.ts';

const AXES = ['b', 'c', 't', 'h', 'w'];

test('a one-letter name gets no one-letter axis name: one substitution away is a guess', () => {
  for (const name of ['d', 'x', 'n', 'k']) assert.is(closest(name, AXES), undefined, name);
  assert.is(closest('dd', ['bd', ...AXES]), undefined);
});

test('short names: a change of case or one letter too many or too few still counts', () => {
  assert.is(closest('B', AXES), 'b');
  assert.is(closest('hh', AXES), 'h');
  assert.is(closest('dim', ['d', 'b']), undefined);
});

test('longer names allow about one edit per three letters, transpositions included', () => {
  assert.is(closest('widht', ['width', 'w']), 'width');
  assert.is(closest('lienar', ['linear', 'layernorm']), 'linear');
  assert.is(closest('hiden_size', ['hidden_size', 'h']), 'hidden_size');
  assert.is(closest('depht', ['d', 'b', 'dim']), undefined);
  assert.is(closest('emb', ['embed']), undefined);
  assert.is(didYouMean('hedas', ['heads', 'h']), "did you mean 'heads'?");
});
test.run();
