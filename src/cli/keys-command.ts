import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { defaultStateDir } from '../shared/default-state-dir.js';
import { generateKeyFiles, KeyExistsError, PRIVATE_KEY_FILE } from '../shared/signing/keys.js';
import { EXIT, runCommand } from './process-lifecycle.js';

/** `pushfleet keys init`: the hub's Ed25519 signing pair, made before the hub's first start (or to replace it). */
export function keysCommand(): Command {
  const keys = new Command('keys').description("the hub's signing key: agents act only on heads, pins, rollbacks, grants and commands it signed");
  keys
    .command('init')
    .description('write hub.key (private, mode 0600) and hub.pub (public, for every agent) into the hub state directory or --dir')
    .option('--dir <dir>', 'where to write them (default: the hub state directory, where the hub looks)', defaultStateDir('pushfleet'))
    .option('--force', 'replace an existing pair (every agent then needs the new hub.pub)', false)
    .addHelpText('after', `\nThen on each agent host, copy hub.pub and set in the agent config:\n  hubPublicKey: /path/to/hub.pub\nA hub with signing.key unset uses <stateDir>/${PRIVATE_KEY_FILE}, and makes one on its first start if there is none.\n`)
    .action((flags: { dir: string; force: boolean }) =>
      runCommand(async () => {
        let made;
        try {
          made = generateKeyFiles(join(resolve(flags.dir), PRIVATE_KEY_FILE), { force: flags.force });
        } catch (err) {
          if (!(err instanceof KeyExistsError)) throw err;
          process.stderr.write(`pushfleet: ${err.message}\n`);
          return EXIT.usage;
        }
        process.stdout.write(
          `wrote ${made.keyFile} (private, mode 0600; key id ${made.kid})\n` +
            `wrote ${made.pubFile} (public)\n\n` +
            `hub config (only if the key is not in the hub's stateDir):\n  signing: { key: ${made.keyFile} }\n` +
            `agent config, after copying hub.pub to the agent host:\n  hubPublicKey: ${made.pubFile}\n`,
        );
      }),
    );
  return keys;
}
