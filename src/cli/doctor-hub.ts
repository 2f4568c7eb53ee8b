import { createServer } from 'node:net';
import type { HubConfig } from '../hub/config.js';
import { ConfigError } from '../shared/config-file.js';
import { StartupError } from '../shared/startup.js';
import { portVerdict, stateDirVerdict, systemdVerdict, type Check, type PortFacts } from './doctor-checks.js';
import { brokerLogin, dirFacts, systemdState } from './doctor-probes.js';
import { checkHubFiles, loadHubConfig } from './hub-command.js';

/** Where systemd/pushfleet-hub.service points the hub. */
export const DEFAULT_HUB_CONFIG = '/etc/pushfleet/hub.yaml';

/** `pushfleet doctor --hub`: the config and the files it names, the state dir, the ports (or the external broker), the unit. */
export async function runHubDoctor(flags: { config: string; unit: string; timeout: number }): Promise<Check[]> {
  const timeoutMs = flags.timeout * 1000;
  const systemd = systemdState(flags.unit, timeoutMs).then((shown) => systemdVerdict(flags.unit, shown));
  let config: HubConfig;
  try {
    config = loadHubConfig({ config: flags.config });
    checkHubFiles(config);
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof StartupError)) throw err;
    return [{ check: 'config', verdict: 'FAIL', detail: `${err.message}\nthe checks that need the config were not run` }, await systemd];
  }
  const checks: Check[] = [
    { check: 'config', verdict: 'ok', detail: `${flags.config}: webhook on ${config.http.host}:${config.http.port}${config.webhook.path}` },
    stateDirVerdict(config.stateDir, dirFacts(config.stateDir)),
  ];
  // A taken port is fine when the hub itself holds it: then it answers its health probe.
  const hubAnswers = await answersHealth(config.http.host, config.http.port, timeoutMs);
  const port = async (what: string, key: string, host: string, n: number) => portVerdict(what, key, `${host}:${n}`, await listenFacts(host, n, hubAnswers));
  checks.push(await port('http', 'http.port', config.http.host, config.http.port));
  if (config.mqtt) {
    const { check, client } = await brokerLogin(config.mqtt, timeoutMs);
    await client?.endAsync(true);
    checks.push(check);
  } else {
    checks.push(await port('broker', 'broker.port', config.broker.host, config.broker.port));
    const tls = config.broker.tls;
    if (tls) checks.push(await port('broker tls', 'broker.tls.port', tls.host ?? config.broker.host, tls.port));
  }
  return [...checks, await systemd];
}

/** Tries to listen where the hub would. */
function listenFacts(host: string, port: number, hubAnswers: boolean): Promise<PortFacts> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? { free: false, hubAnswers } : { error: err.code ?? err.message }));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve({ free: true })));
  });
}

async function answersHealth(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const at = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  try {
    const res = await fetch(`http://${at}:${port}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok && ((await res.json()) as { ok?: unknown }).ok === true;
  } catch {
    return false;
  }
}
