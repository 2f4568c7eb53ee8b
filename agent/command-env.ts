/**
 * The agent's own secrets in its environment (PUSHFLEET_MQTT_PASSWORD from the unit's
 * EnvironmentFile, a token or secret of the same kind): what it connects with, not what an app
 * needs. The agent logs every output line of the commands it runs, so a build that prints its
 * environment would otherwise put them in the journal.
 */
const SECRET = /^PUSHFLEET_\w*(?:PASSWORD|SECRET|TOKEN)$/;

/** The environment an app's command (update, restart, health, playbook action) runs with: the agent's, minus its secrets, plus `extra`. */
export function commandEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !SECRET.test(name)));
  return { ...env, ...extra };
}
