/**
 * The sandbox's logical clock. Leases and lifecycle read it; the chains keep wall-clock time because
 * the x402 facilitator and mppx check validity windows against real time.
 */
export interface Clock {
  /** Milliseconds since the epoch, shifted by the offset. */
  now(): number;
  /** The current offset in milliseconds. */
  offsetMs(): number;
  /** Moves the clock forward (never backward) and returns the new now. */
  advance(seconds: number): number;
}

/** Creates a clock whose offset starts at `offsetMs` and is reported through `onChange`. */
export function createClock(
  options: { offsetMs?: number; onChange?: (offsetMs: number) => void } = {},
): Clock {
  const { onChange } = options;
  let offset = options.offsetMs ?? 0;
  return {
    now: () => Date.now() + offset,
    offsetMs: () => offset,
    advance(seconds) {
      offset += Math.max(0, Math.round(seconds * 1000));
      onChange?.(offset);
      return Date.now() + offset;
    },
  };
}
