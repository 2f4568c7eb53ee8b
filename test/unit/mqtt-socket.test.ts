import { describe, expect, it } from 'vitest';
import { brokerAddress } from '../../src/shared/mqtt-socket.js';

describe('the broker address for services\' own socket', () => {
  it('reads host and port as mqtt.js does, with its default ports', () => {
    expect(brokerAddress('mqtt://hub.example:1884', {}, {})).toEqual({ host: 'hub.example', port: 1884, secure: false });
    expect(brokerAddress('mqtt://hub.example', {}, {})).toEqual({ host: 'hub.example', port: 1883, secure: false });
    expect(brokerAddress('mqtts://hub.example', {}, {})).toEqual({ host: 'hub.example', port: 8883, secure: true });
    expect(brokerAddress('mqtt://[::1]:1883', {}, {})).toEqual({ host: '::1', port: 1883, secure: false });
  });
  it('is TLS when a client certificate and key are given, whatever the scheme (as mqtt.connect upgrades it)', () => {
    expect(brokerAddress('mqtt://hub.example', { cert: 'c', key: 'k' }, {})).toEqual({ host: 'hub.example', port: 8883, secure: true });
    expect(brokerAddress('mqtt://hub.example', { cert: 'c' }, {})?.secure).toBe(false);
  });
  it('is left to mqtt.connect for WebSockets, a clientId in the query and a SOCKS proxy', () => {
    expect(brokerAddress('ws://hub.example/mqtt', {}, {})).toBeUndefined();
    expect(brokerAddress('wss://hub.example/mqtt', {}, {})).toBeUndefined();
    expect(brokerAddress('mqtt://hub.example?clientId=x', {}, {})).toBeUndefined();
    expect(brokerAddress('mqtt://hub.example', {}, { MQTTJS_SOCKS_PROXY: 'socks5://127.0.0.1:1080' })).toBeUndefined();
  });
});
