/** A stretch of the circular due order, from one due key to another, both included; `from > to` wraps. */
interface Stretch {
  readonly from: string;
  to: string;
}

/**
 * What one pass has walked of the due order, remembered as stretches rather than task ids.
 *
 * A pass reads the due tasks as one or more streams: each stream starts somewhere on the circular due order
 * (a hop restarts it at a random point) and walks forward, wrapping around at most once. So what the pass
 * has walked is a union of arcs of that circle, one per stream, each known by the due keys of its first and
 * last task. Memory is one arc per stream (at most `maxHopsPerPass + 1`), whatever the number of due tasks.
 *
 * A task that became due inside an arc after its stream had passed (a retry whose backoff ended, say) is
 * left for the next pass, as it would be had the pass not hopped.
 */
export class WalkedStretches {
  readonly #done: Stretch[] = [];
  #current: Stretch | undefined;

  /** True when `key` lies on a stretch an earlier stream of this pass walked. */
  has(key: string): boolean {
    return this.#done.some((stretch) => covers(stretch, key));
  }

  /** The current stream has walked up to the task with this key (keys arrive in stream order). */
  walk(key: string): void {
    if (this.#current) this.#current.to = key;
    else this.#current = { from: key, to: key };
  }

  /** The current stream ends; the next `walk` begins a new stretch. */
  endStream(): void {
    if (this.#current) this.#done.push(this.#current);
    this.#current = undefined;
  }

  /** Stretches remembered so far (the current one included). */
  get size(): number {
    return this.#done.length + (this.#current ? 1 : 0);
  }
}

function covers({ from, to }: Stretch, key: string): boolean {
  return from <= to ? from <= key && key <= to : key >= from || key <= to;
}
