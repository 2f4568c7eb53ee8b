import type { MqttClient } from 'mqtt';
import { JobStart, JobStop, RunId } from '../../src/shared/contract/jobs-messages.js';
import type { Logger } from '../../src/shared/logger.js';
import { decode } from '../../src/shared/messages.js';
import { agentJobsPrefix, agentJobTopic } from '../../src/shared/topics.js';
import type { ActionsConfig } from '../action-config.js';
import { commandEnv } from '../command-env.js';
import { describeGroup, stopLeftover } from '../process-group.js';
import { launch } from '../run-command.js';
import type { SignedInbox } from '../signed-inbox.js';
import type { AgentJobsConfig } from './jobs-config.js';
import { JobRunner } from './job-runner.js';
import { RunRecords } from './run-records.js';

export type AgentJobs = {
  offer: JobRunner['offer'];
  /** Subscribes to this agent's starts and stops (again on every connect). */
  subscribe(): Promise<void>;
  stop(): Promise<void>;
};

const PRUNE_MS = 3600_000;

/**
 * The agent's part of the hub's jobs engine, on the agent's MQTT client: signed starts and stops
 * on `pushfleet/agents/<id>/jobs/<run>/start|stop` go through the signed inbox to the JobRunner,
 * which reports each run's state, retained, on `.../status`.
 */
export async function startAgentJobs(
  agent: { id: string; stateDir: string; actions: ActionsConfig; jobs: AgentJobsConfig },
  mqtt: MqttClient,
  inbox: Pick<SignedInbox, 'open'>,
  changed: () => void,
  log: Logger,
): Promise<AgentJobs> {
  const records = new RunRecords(agent.stateDir);
  const runner = new JobRunner({
    actions: agent.actions,
    jobs: agent.jobs,
    records,
    launch: (argv, opts, track) => launch(argv, { ...opts, env: commandEnv({ PUSHFLEET_AGENT: agent.id, ...opts.env }) }, track),
    describeGroup: (pid, argv0) => describeGroup(pid, 'job', argv0),
    stopLeftover: (group) => stopLeftover(group, log),
    publish: async (run, status) => {
      await mqtt.publishAsync(agentJobTopic(agent.id, run, 'status'), JSON.stringify(status), { qos: 1, retain: true });
    },
    changed,
    now: Date.now,
    log,
  });
  await runner.recover();
  records.prune(Date.now());
  const pruner = setInterval(() => records.prune(Date.now()), PRUNE_MS).unref();

  const prefix = agentJobsPrefix(agent.id);
  const onMessage = (topic: string, raw: Buffer) => {
    if (!topic.startsWith(prefix)) return;
    const [run, leaf, ...rest] = topic.slice(prefix.length).split('/');
    if (rest.length || (leaf !== 'start' && leaf !== 'stop')) return;
    inbox.open(topic, raw, (payload) => {
      const id = RunId.safeParse(run);
      const message = leaf === 'start' ? decode(JobStart, payload) : decode(JobStop, payload);
      if (!id.success || !message.ok || message.value.run !== run) {
        log.warn({ topic, error: message.ok ? 'the run of the payload is not that of the topic' : message.error }, `ignored malformed job ${leaf}`);
        // Answered where the hub waits for it, so the run fails with the reason rather than by a timeout.
        if (id.success && leaf === 'start') runner.malformed(run!, `malformed start: ${message.ok ? 'its run differs from the topic' : message.error}`);
        return;
      }
      try {
        if (leaf === 'start') runner.start(message.value as JobStart);
        else runner.stop(run!);
      } catch (err) {
        // A run record that cannot be read: whether it ran is unknown, so nothing is run.
        log.error({ run, err: (err as Error).message }, `job ${leaf} not handled`);
      }
    });
  };
  mqtt.on('message', onMessage);
  const filters = [agentJobTopic(agent.id, '+', 'start'), agentJobTopic(agent.id, '+', 'stop')];
  log.info({ actions: agent.jobs.actions, maxConcurrent: agent.jobs.maxConcurrent }, 'offering actions to the jobs engine');

  return {
    offer: () => runner.offer(),
    subscribe: async () => {
      await mqtt.subscribeAsync(filters, { qos: 1 });
    },
    async stop() {
      clearInterval(pruner);
      mqtt.off('message', onMessage);
      await runner.stopAll();
    },
  };
}
