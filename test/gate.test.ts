import { Gate, GateTimeoutError } from '../src/gate';

const settled = async (promise: Promise<unknown>) => {
  let state = 'pending';
  promise.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((resolve) => setImmediate(resolve));
  return state;
};

describe('Gate', () => {
  it('admits up to its capacity, then queues until room is released', async () => {
    const gate = new Gate(10, 60_000);
    const first = await gate.enter(6);
    await gate.enter(4);
    const third = gate.enter(3);
    expect(await settled(third)).toBe('pending');
    expect(gate.waiting).toBe(1);
    first();
    first(); // a second release changes nothing
    expect(await settled(third)).toBe('resolved');
    expect(gate.inUse).toBe(7);
  });

  it('keeps the order of arrival: a small request does not pass a large one waiting ahead of it', async () => {
    const gate = new Gate(10, 60_000);
    const held = await gate.enter(8);
    const large = gate.enter(5);
    const small = gate.enter(1);
    expect(await settled(small)).toBe('pending');
    held();
    expect(await settled(large)).toBe('resolved');
    expect(await settled(small)).toBe('resolved');
  });

  it('takes a weight over its capacity as the whole capacity', async () => {
    const gate = new Gate(10, 60_000);
    const release = await gate.enter(50);
    expect(gate.inUse).toBe(10);
    expect(await settled(gate.enter(1))).toBe('pending');
    release();
    expect(gate.inUse).toBe(1);
  });

  it('gives up after its wait, and the one that gave up no longer holds back those behind it', async () => {
    const gate = new Gate(10, 50);
    const held = await gate.enter(9);
    const large = gate.enter(5);
    await expect(large).rejects.toBeInstanceOf(GateTimeoutError);
    expect(gate.waiting).toBe(0);
    await expect(gate.enter(1)).resolves.toBeInstanceOf(Function);
    held();
  });

  it('counts the waiters it turned away after their wait, not those who left on their own', async () => {
    const gate = new Gate(1, 20);
    const held = await gate.enter();
    await expect(gate.enter()).rejects.toBeInstanceOf(GateTimeoutError);
    const leaving = new AbortController();
    const left = gate.enter(1, leaving.signal);
    leaving.abort(new Error('client gone'));
    await expect(left).rejects.toThrow('client gone');
    expect(gate.refused).toBe(1);
    held();
  });

  it('rejects a waiter that gave up with what its caller makes of the timeout', async () => {
    const gate = new Gate(1, 20, (timeout) => new Error(`busy after ${timeout.waitedMs} ms`));
    const held = await gate.enter();
    await expect(gate.enter()).rejects.toThrow('busy after 20 ms');
    held();
  });

  it('lets a waiter whose signal aborts leave the queue at once, with the signal reason', async () => {
    const gate = new Gate(1, 60_000);
    await gate.enter();
    const aborted = new AbortController();
    const waiting = gate.enter(1, aborted.signal);
    const behind = gate.enter(1);
    aborted.abort(new Error('client gone'));
    await expect(waiting).rejects.toThrow('client gone');
    expect(gate.waiting).toBe(1);
    expect(await settled(behind)).toBe('pending');
    await expect(gate.enter(1, AbortSignal.abort(new Error('already gone')))).rejects.toThrow('already gone');
  });

  it('admits a waiter once whose place comes up as its signal aborts, and its release frees the room', async () => {
    const gate = new Gate(1, 60_000);
    const first = await gate.enter();
    const aborted = new AbortController();
    const second = gate.enter(1, aborted.signal);
    first();
    aborted.abort(new Error('too late'));
    const release = await second;
    expect(gate.inUse).toBe(1);
    release();
    expect(gate.inUse).toBe(0);
  });
});
