import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deque } from '../src/pool/deque.js';

test('deque keeps FIFO order across growth and wrap-around, with unshift at the head', () => {
  const d = new Deque<number>(2);
  const model: number[] = [];
  let next = 0;
  for (let round = 0; round < 500; round++) {
    const op = (round * 7919) % 5;
    if (op < 2) {
      d.push(next);
      model.push(next++);
    } else if (op === 2) {
      d.unshift(next);
      model.unshift(next++);
    } else {
      assert.equal(d.shift(), model.shift());
    }
    assert.equal(d.length, model.length);
    assert.equal(d.peek(), model[0]);
  }
  assert.deepEqual(d.drain(), model);
  assert.equal(d.length, 0);
  assert.equal(d.shift(), undefined);
});
