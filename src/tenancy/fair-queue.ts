import { Deque } from '../pool/deque.js';

/**
 * One FIFO per tenant, served in turn: a tenant that floods the pool only lengthens its own queue.
 * Items without a tenant share the '' queue. `canServe` lets the caller skip a tenant (e.g. one at
 * its running limit) without losing its place.
 */
export class FairQueue<T extends { tenant: string }> {
  private readonly queues = new Map<string, Deque<T>>();
  /** Tenants with queued items, in serving order; `next` is the index of the one to serve next. */
  private readonly turn: string[] = [];
  private next = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  queuedFor(tenant: string): number {
    return this.queues.get(tenant)?.length ?? 0;
  }

  push(item: T): void {
    this.queueOf(item.tenant).push(item);
    this.count++;
  }

  /** Puts an item back at the head of its tenant's queue (a retry keeps its place). */
  unshift(item: T): void {
    this.queueOf(item.tenant).unshift(item);
    this.count++;
  }

  /** The item that would be served next, skipping tenants `canServe` refuses. */
  peek(canServe: (tenant: string) => boolean = () => true): T | undefined {
    const at = this.findTurn(canServe);
    return at === -1 ? undefined : this.queues.get(this.turn[at]!)!.peek();
  }

  shift(canServe: (tenant: string) => boolean = () => true): T | undefined {
    const at = this.findTurn(canServe);
    if (at === -1) return undefined;
    const tenant = this.turn[at]!;
    const queue = this.queues.get(tenant)!;
    const item = queue.shift()!;
    this.count--;
    if (queue.length === 0) {
      this.queues.delete(tenant);
      this.turn.splice(at, 1);
      this.next = this.turn.length === 0 ? 0 : at % this.turn.length;
    } else {
      this.next = (at + 1) % this.turn.length;
    }
    return item;
  }

  drain(): T[] {
    const out: T[] = [];
    for (const queue of this.queues.values()) out.push(...queue.drain());
    this.queues.clear();
    this.turn.length = 0;
    this.next = 0;
    this.count = 0;
    return out;
  }

  private queueOf(tenant: string): Deque<T> {
    let queue = this.queues.get(tenant);
    if (!queue) {
      queue = new Deque<T>();
      this.queues.set(tenant, queue);
      this.turn.push(tenant);
    }
    return queue;
  }

  private findTurn(canServe: (tenant: string) => boolean): number {
    for (let i = 0; i < this.turn.length; i++) {
      const at = (this.next + i) % this.turn.length;
      if (canServe(this.turn[at]!)) return at;
    }
    return -1;
  }
}
