import { Router, type Request, type Response } from 'express';
import { sendError } from '../api/api-error.js';
import type { Asset, DashboardAssets } from './dashboard-assets.js';

/**
 * The page's own rules for the browser: its scripts, styles and requests come from this hub
 * only, no inline script or style, no forms sent anywhere (the token form is read by script), no
 * framing by another site, no referrer sent along.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * `GET /` (the page) and `GET /assets/<file>`: public, since they hold no data (the page asks for
 * a token and reads everything through the API). Revalidated on each load (ETag, 304), gzipped
 * for clients that take it.
 */
export function dashboardRoutes(assets: DashboardAssets): Router {
  const router = Router();
  if (!(assets instanceof Map)) {
    router.get('/', (_req, res) => sendError(res, 503, 'unavailable', assets.unavailable));
    return router;
  }
  router.get('/', (req, res) => send(req, res, assets.get('index.html')));
  router.get('/assets/:file', (req, res, next) => {
    const name = req.params.file;
    // index.html only at '/': a single place for the page.
    if (name === 'index.html' || !assets.has(name)) return next();
    send(req, res, assets.get(name));
  });
  return router;
}

function send(req: Request, res: Response, asset: Asset | undefined): void {
  if (!asset) throw new Error('dashboard asset missing');
  res.set(SECURITY_HEADERS);
  res.set({ 'content-type': asset.type, 'cache-control': 'no-cache', etag: asset.etag, vary: 'accept-encoding' });
  if (req.headers['if-none-match'] === asset.etag) return void res.status(304).end();
  const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
  if (gzip) res.set('content-encoding', 'gzip');
  res.end(gzip ? asset.gzip : asset.body);
}
