import { Command } from 'commander';
import { AppState, decode, SCHEMA_VERSION } from '../shared/messages.js';
import { RetryRequest } from '../shared/contract/rollout-messages.js';
import { agentRetryTopic, appStateTopic, TOPIC_LEVEL } from '../shared/topics.js';
import { checkedArg, EXIT, parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { operator } from './mqtt-request.js';
import { newRequestId } from '../shared/contract/request-envelope.js';

type Flags = MqttFlags & { agent: string; app: string; wait: number };

/** The agent answered that there was nothing to retry. */
export const EXIT_NOTHING_TO_RETRY = 3;

const nameArg = checkedArg((v) => TOPIC_LEVEL.test(v), 'letters, digits, ".", "_" or "-"');

/** Publishes the request and waits until the agent's app state answers it. */
async function retry(flags: Flags): Promise<number> {
  const client = await connectFromFlags(flags, flags.wait);
  const requestId = newRequestId();
  const where = `${flags.agent}/${flags.app}`;
  try {
    const answer = new Promise<NonNullable<AppState['retryRequest']> | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), flags.wait * 1000);
      client.on('message', (_topic, payload) => {
        const d = decode(AppState, payload);
        if (!d.ok || d.value.retryRequest?.id !== requestId) return;
        clearTimeout(timer);
        resolve(d.value.retryRequest);
      });
    });
    await client.subscribeAsync(appStateTopic(flags.agent, flags.app), { qos: 1 });
    const request: RetryRequest = { v: SCHEMA_VERSION, app: flags.app, requestId, by: operator(), at: new Date().toISOString() };
    await client.publishAsync(agentRetryTopic(flags.agent), JSON.stringify(request), { qos: 1 });
    const got = await answer;
    if (!got) {
      process.stderr.write(`pushfleet: no answer from agent ${flags.agent} within ${flags.wait} s: is it online, and does it run an app "${flags.app}"?\n`);
      return EXIT.failure;
    }
    process.stdout.write(`${where}: ${got.detail}\n`);
    return got.accepted ? EXIT.ok : EXIT_NOTHING_TO_RETRY;
  } finally {
    await client.endAsync();
  }
}

export function retryCommand(): Command {
  return withMqttFlags(new Command('retry'))
    .description("try an app's last failed update again (a failed update, restart or health check is not retried by itself), or a retried fetch now")
    .requiredOption('--agent <id>', 'the agent running the app', nameArg)
    .requiredOption('--app <name>', 'the app, as named in the agent config', nameArg)
    .option('--wait <seconds>', 'how long to wait for the agent to answer', parsePositiveNumber, 10)
    .addHelpText('after', `\nExit codes: 0 the agent is trying again, ${EXIT_NOTHING_TO_RETRY} it had nothing to retry, 1 no answer (agent offline?) or broker unreachable, 2 bad usage.`)
    .action((flags: Flags) => runCommand(() => retry(flags)));
}
