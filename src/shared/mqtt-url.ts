/**
 * A broker URL may carry credentials (`mqtt://user:pass@host`). They are taken out before the URL
 * reaches mqtt.js (which splits `user:pass` at the last colon, so a password holding one would be
 * cut) and before it reaches a log line or an error.
 */
export function splitCredentials(url: string): { url: string; username?: string; password?: string } {
  const parsed = parse(url);
  if (!parsed || (parsed.username === '' && parsed.password === '')) return { url };
  const username = decodeURIComponent(parsed.username);
  const password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), ...(username !== '' && { username }), ...(password !== undefined && { password }) };
}

/** The URL as it may be shown: any password replaced by `***`. */
export function redactUrl(url: string): string {
  const parsed = parse(url);
  if (!parsed) return url.replace(/\/\/[^/@]*@/, '//***@');
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

function parse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}
