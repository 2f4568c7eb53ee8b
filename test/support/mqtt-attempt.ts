import mqtt from 'mqtt';

export type Outcome = 'refused at login' | 'connection closed' | 'accepted';
export type Publish = { topic: string; payload: string | Buffer; retain?: boolean };

/** One publish on a connection of its own: refused at CONNACK, cut off without a PUBACK, or acknowledged. */
export async function attempt(url: string, a: Publish): Promise<Outcome> {
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 });
  } catch (err) {
    if ([4, 5].includes((err as { code?: number }).code!)) return 'refused at login';
    throw err;
  }
  try {
    return await Promise.race([
      new Promise<Outcome>((resolve) => client.once('close', () => resolve('connection closed'))),
      client.publishAsync(a.topic, a.payload, { qos: 1, retain: a.retain ?? false }).then((): Outcome => 'accepted'),
    ]);
  } finally {
    client.end(true);
  }
}

/** A flood of `count` retained messages (`nth(i)`) on one connection, QoS 0 but the last: how it ended. */
export async function flood(url: string, count: number, nth: (i: number) => Publish): Promise<Outcome> {
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 });
  } catch {
    return 'refused at login';
  }
  const gone = new Promise<Outcome>((resolve) => client.once('close', () => resolve('connection closed')));
  for (let i = 0; i < count - 1 && client.connected; i++) client.publish(nth(i).topic, nth(i).payload, { qos: 0, retain: true });
  const last = nth(count - 1);
  const outcome = await Promise.race([gone, client.publishAsync(last.topic, last.payload, { qos: 1, retain: true }).then((): Outcome => 'accepted')]);
  client.end(true);
  return outcome;
}
