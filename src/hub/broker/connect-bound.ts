import type { Socket } from 'node:net';

/**
 * What a client may send before it has logged in: a CONNECT with the longest client id, user
 * name, password and will fits. aedes buffers a packet whole before parsing it, and MQTT lets a
 * packet declare up to 256 MB, so without a bound anyone who reaches the port could make the hub
 * hold that much per connection before it is even asked for a password.
 */
export const BEFORE_LOGIN_BYTES = 64 * 1024;

/** Closes `socket` once it has sent more than `limit` bytes while not yet in `loggedIn`. */
export function boundBeforeLogin(socket: Socket, loggedIn: WeakSet<object>, limit = BEFORE_LOGIN_BYTES): void {
  // aedes reads on 'readable'; a 'data' listener then sees each chunk as aedes reads it.
  const watch = () => {
    if (loggedIn.has(socket)) socket.off('data', watch);
    else if (socket.bytesRead > limit) socket.destroy();
  };
  socket.on('data', watch);
}
