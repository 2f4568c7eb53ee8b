/**
 * A login refused at the broker or the API, as the audit log records it: the name tried (null for
 * an anonymous MQTT client), from where, and why.
 */
export type LoginRefusal = { name: string | null; address: string; reason: string };
