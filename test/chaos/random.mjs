// A small seeded PRNG (sfc32 seeded through splitmix32), so a chaos run's task batch and fault schedule
// are reproducible from one printed seed.

/** A seeded source of randomness. */
export class Random {
  #a;
  #b;
  #c;
  #d;

  /** @param {number} seed an unsigned 32-bit integer */
  constructor(seed) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next();
    for (let i = 0; i < 12; i++) this.float();
  }

  /** A float in [0, 1). */
  float() {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t / 4_294_967_296;
  }

  /** A float in [min, max). */
  between(min, max) {
    return min + (max - min) * this.float();
  }

  /** An integer in [min, max] (both included). */
  int(min, max) {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p) {
    return this.float() < p;
  }

  /** One element of a non-empty array. */
  pick(items) {
    return items[Math.floor(this.float() * items.length)];
  }

  /** One key of `weights` (`{ name: weight }`), chosen in proportion to its weight. */
  weighted(weights) {
    const entries = Object.entries(weights).filter(([, w]) => w > 0);
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let x = this.float() * total;
    for (const [name, w] of entries) {
      x -= w;
      if (x < 0) return name;
    }
    return entries.at(-1)[0];
  }

  /** An exponentially distributed delay with the given mean. */
  exponential(mean) {
    return -Math.log(1 - this.float()) * mean;
  }
}

/** A fresh random seed (an unsigned 32-bit integer). */
export function randomSeed() {
  return Math.floor(Math.random() * 4_294_967_296) >>> 0;
}
