import { join } from 'node:path';
import { z } from 'zod';
import { writePrivateFile } from '../../src/shared/private-file.js';
import type { GenerationLog, GenerationRecord } from './lease-holder.js';
import { readStateFile } from '../state-file.js';

const Generations = z.record(z.string(), z.object({ generation: z.number().int().nonnegative(), restarts: z.number().int().min(-1), ended: z.boolean() }).strict());

/**
 * `<stateDir>/services/generations.json`: the highest generation this agent has seen per service,
 * replaced atomically and fsynced (writePrivateFile) before the agent acts on it, so a restarted
 * agent refuses what it refused before. A damaged file stops the agent's services part with its
 * path named, rather than forgetting what it fenced.
 */
export class GenerationFile implements GenerationLog {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = join(stateDir, 'services', 'generations.json');
  }

  load(): Record<string, GenerationRecord> {
    return readStateFile(this.file, Generations, {}, 'move it aside only once no service of this agent runs anywhere it should not');
  }

  save(all: Record<string, GenerationRecord>): void {
    writePrivateFile(this.file, JSON.stringify(all));
  }
}
