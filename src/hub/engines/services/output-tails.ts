import type { ServiceOutput } from '../../../shared/contract/services-engine-messages.js';

/** Copies whose output is kept, and characters in all: agents publish, so memory is bounded. */
export const OUTPUT_LIMITS = { copies: 1000, chars: 32 * 1024 * 1024 };

/**
 * The latest output tail of each service copy (service, agent, generation), as its agent last
 * published it, for `pushfleet services logs`. In memory only: the agents keep them retained, so a
 * restarted hub hears them again. The least recently updated go first when a bound is reached.
 */
export class OutputTails {
  private readonly tails = new Map<string, ServiceOutput>();
  private chars = 0;

  constructor(private readonly limits = OUTPUT_LIMITS) {}

  put(output: ServiceOutput): void {
    const key = keyOf(output.name, output.agent, output.generation);
    this.drop(key);
    this.tails.set(key, output);
    this.chars += output.output.length;
    for (const oldest of this.tails.keys()) {
      if (this.tails.size <= this.limits.copies && this.chars <= this.limits.chars) break;
      this.drop(oldest);
    }
  }

  get(name: string, agent: string, generation: number): ServiceOutput | undefined {
    return this.tails.get(keyOf(name, agent, generation));
  }

  private drop(key: string): void {
    const old = this.tails.get(key);
    if (!old) return;
    this.chars -= old.output.length;
    this.tails.delete(key);
  }
}

const keyOf = (name: string, agent: string, generation: number): string => `${name}\u0000${agent}\u0000${generation}`;
