import { connect as tcpConnect, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';

export type StreamBuilder = (client: MqttClient) => Duplex;

export type BrokerAddress = { host: string; port: number; secure: boolean };

/**
 * Where an mqtt:// or mqtts:// URL points, as mqtt.js reads it; undefined where only
 * mqtt.connect() knows how to connect: ws:// and wss://, a clientId in the URL's query, a SOCKS
 * proxy (MQTTJS_SOCKS_PROXY).
 */
export function brokerAddress(url: string, options: Pick<IClientOptions, 'cert' | 'key'>, env: NodeJS.ProcessEnv = process.env): BrokerAddress | undefined {
  const parsed = new URL(url);
  if (!['mqtt:', 'mqtts:'].includes(parsed.protocol) || parsed.search !== '' || env.MQTTJS_SOCKS_PROXY) return undefined;
  // mqtt.js turns mqtt:// into mqtts:// when a client certificate and key are given.
  const secure = parsed.protocol === 'mqtts:' || Boolean(options.cert && options.key);
  const port = parsed.port === '' ? (secure ? 8883 : 1883) : Number(parsed.port);
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost', port, secure };
}

/**
 * The socket to the broker, opened as mqtt.js's own tcp and tls builders open it. Not through
 * mqtt.connect(): each call loads the builders of every protocol, the WebSocket and SOCKS ones
 * with their packages (ws, socks, ip-address: 4 MB of an idle agent's memory, never used).
 */
export function brokerSocket(url: string, options: IClientOptions): StreamBuilder | undefined {
  const address = brokerAddress(url, options);
  if (!address) return undefined;
  const { host, port } = address;
  if (!address.secure) return () => tcpConnect({ host, port });
  const rejectUnauthorized = options.rejectUnauthorized !== false;
  return (client) => {
    const socket = tlsConnect({ host, port, ...(isIP(host) === 0 && { servername: host }), ca: options.ca, cert: options.cert, key: options.key, rejectUnauthorized });
    // As mqtt.js's tls builder: a handshake error is reported as the client's (it then
    // reconnects), and a peer that is not verified is dropped.
    const handshakeFailed = (err: Error) => {
      if (rejectUnauthorized) client.emit('error', err);
      socket.end();
    };
    socket.on('error', handshakeFailed);
    socket.on('secureConnect', () => {
      if (rejectUnauthorized && !socket.authorized) socket.emit('error', new Error('TLS not authorized'));
      else socket.off('error', handshakeFailed);
    });
    return socket;
  };
}
