/**
 * A map bounded by forgetting its least recently used half at once: the transaction cache, the
 * sequence tracker and the per-source rate limit keep their entries in one.
 *
 * Two generations rather than one Map kept in LRU order: evicting a Map's first key one at a time
 * leaves tombstones at its head that every later eviction walks again (V8 compacts only on
 * rehash), which made each request cost O(size) once the bound was reached (under 8k MESSAGE/s the
 * server stalled ~10 s in). Here new and recently used entries go into the current generation; when
 * it is full it becomes the previous one, and the previous one is dropped whole, in O(1).
 *
 * Bounds: entries, and optionally a weight (bytes) given per entry; each generation holds half of
 * each, so at least the newest half is always kept.
 */
export class TwoGenerationMap<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generationMax: number;
  private readonly generationMaxWeight: number;
  private currentWeight = 0;
  private previousWeight = 0;

  constructor(
    maxEntries: number,
    options: {
      /** Most weight held (each generation half of it); default unbounded. */
      maxWeight?: number;
      /** Called when the current generation becomes the previous one. */
      onRotate?: () => void;
    } = {},
  ) {
    this.generationMax = Math.max(1, Math.floor(maxEntries / 2));
    this.generationMaxWeight = (options.maxWeight ?? Infinity) / 2;
    this.onRotate = options.onRotate;
  }

  private readonly onRotate: (() => void) | undefined;

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** The weight of the entries held: at most maxWeight, plus what entries gained after they were set. */
  get weight(): number {
    return this.currentWeight + this.previousWeight;
  }

  /** The value, wherever it is, without making it recently used. */
  peek(key: K): V | undefined {
    return this.current.get(key) ?? this.previous.get(key);
  }

  /** The value; one found in the previous generation moves into the current one (recently used). */
  get(key: K): V | undefined {
    const v = this.current.get(key);
    if (v !== undefined) return v;
    const old = this.previous.get(key);
    if (old !== undefined) {
      this.previous.delete(key);
      this.set(key, old);
    }
    return old;
  }

  /** Sets key in the current generation, first rotating when that one is full (a key already in it: by weight). */
  set(key: K, value: V, weight = 0): void {
    const full = this.current.has(key)
      ? this.currentWeight + weight > this.generationMaxWeight
      : this.current.size >= this.generationMax || this.currentWeight + weight > this.generationMaxWeight;
    if (full) this.rotate();
    this.current.set(key, value);
    this.currentWeight += weight;
  }

  /** Adds to the weight of the generation that holds key (an entry that grew, e.g. got its response). */
  addWeight(key: K, weight: number): void {
    if (this.current.has(key)) this.currentWeight += weight;
    else if (this.previous.has(key)) this.previousWeight += weight;
  }

  delete(key: K): void {
    this.current.delete(key);
    this.previous.delete(key);
  }

  /** The current generation becomes the previous one; the previous one is forgotten. */
  rotate(): void {
    this.previous = this.current;
    this.previousWeight = this.currentWeight;
    this.current = new Map();
    this.currentWeight = 0;
    this.onRotate?.();
  }
}
