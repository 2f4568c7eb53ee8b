/**
 * `node publish-then-die.js <stateDir> <port> <topic>`: runs the embedded broker on `stateDir`,
 * publishes one QoS 1 message as a client (over the in-process connection, so the PUBACK comes
 * back within the same event-loop turn), and SIGKILLs itself the moment the PUBACK arrives.
 * Whatever the broker had not made durable by then is lost, as in a crash.
 */
import { MqttClient } from 'mqtt';
import { startEmbeddedBroker } from '../../src/hub/broker/embedded-broker.js';
import { createLogger } from '../../src/shared/logger.js';

const [stateDir, port, topic] = process.argv.slice(2) as [string, string, string];
const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: Number(port), state: { stateDir } }, createLogger('broker', 'warn'));
const client = new MqttClient(() => broker.connectInProcess(), { clean: true, reconnectPeriod: 0 });
client.once('connect', () => {
  client.publish(topic, 'acknowledged before the kill', { qos: 1 }, () => process.kill(process.pid, 'SIGKILL'));
});
