import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { decode, HubStatus, SCHEMA_VERSION } from '../shared/messages.js';
import { RunEvent, type RunCancel, type RunReport, type RunRequest } from '../shared/contract/orchestrator-messages.js';
import { HUB_STATUS, runCancelTopic, runEventsTopic, runRequestTopic } from '../shared/topics.js';
import { describeRunEvent } from './play-summary.js';

export type NativePlayDeps = {
  mqtt: MqttClient;
  progress(line: string): void;
  /** How long to wait for the hub to accept the run. */
  hubTimeoutMs: number;
  /** After a cancel, how long to wait for the hub's final report. */
  cancelTimeoutMs: number;
  /** Aborted on Ctrl-C: the hub is asked to stop every running action. */
  signal: AbortSignal;
};

/**
 * Submits a native playbook to the hub's orchestrator engine and follows the run's events
 * until its report arrives. The hub does the scheduling; this is only its terminal.
 */
export async function playNative(deps: NativePlayDeps, file: string, playbook: string): Promise<{ report: RunReport } | { error: string }> {
  const runId = `run-${randomUUID()}`;
  const events = runEventsTopic(runId);
  await deps.mqtt.subscribeAsync([events, HUB_STATUS], { qos: 1 });
  return new Promise((resolve) => {
    let deadline = setTimeout(() => finish({ error: `no hub answered within ${deps.hubTimeoutMs / 1000} s (is \`pushfleet hub\` running on this broker?)` }), deps.hubTimeoutMs);
    let disconnected: NodeJS.Timeout | undefined;
    const finish = (outcome: { report: RunReport } | { error: string }) => {
      clearTimeout(deadline);
      clearTimeout(disconnected);
      deps.mqtt.off('message', onMessage).off('close', onClose).off('connect', onConnect);
      deps.signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    // The hub holds the run: if it goes away the run is lost, and waiting for its report is pointless.
    const lost = (why: string) => finish({ error: `${why}: the run is lost; actions already started on the nodes run on until they end, their duration passes or their agent stops` });
    const onClose = () => {
      disconnected ??= setTimeout(() => lost(`lost the broker for ${deps.hubTimeoutMs / 1000} s`), deps.hubTimeoutMs);
    };
    const onConnect = () => {
      clearTimeout(disconnected);
      disconnected = undefined;
    };
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic === HUB_STATUS) {
        const status = decode(HubStatus, payload);
        if (status.ok && status.value.state === 'offline') lost(`the hub went offline at ${status.value.at}`);
        return;
      }
      if (topic !== events) return;
      const event = decode(RunEvent, payload);
      if (!event.ok) return;
      const line = describeRunEvent(event.value);
      if (line) deps.progress(line);
      if (event.value.type === 'accepted' && !deps.signal.aborted) clearTimeout(deadline);
      if (event.value.type === 'rejected') finish({ error: event.value.error });
      if (event.value.type === 'finished') finish({ report: event.value.report });
    };
    const onAbort = () => {
      deps.progress('interrupted: asking the hub to stop every running action');
      const cancel: RunCancel = { v: SCHEMA_VERSION, runId, reason: 'interrupted (SIGINT)' };
      deps.mqtt.publishAsync(runCancelTopic(runId), JSON.stringify(cancel), { qos: 1 }).catch((err: Error) => finish({ error: `cannot cancel the run: ${err.message}` }));
      clearTimeout(deadline);
      deadline = setTimeout(() => finish({ error: `the hub sent no report within ${deps.cancelTimeoutMs / 1000} s of the cancel` }), deps.cancelTimeoutMs);
    };
    deps.mqtt.on('message', onMessage).on('close', onClose).on('connect', onConnect);
    deps.signal.addEventListener('abort', onAbort, { once: true });
    const request: RunRequest = { v: SCHEMA_VERSION, runId, file, playbook, requestedAt: new Date().toISOString() };
    deps.mqtt.publishAsync(runRequestTopic(runId), JSON.stringify(request), { qos: 1 }).catch((err: Error) => finish({ error: `cannot submit the run: ${err.message}` }));
  });
}
