import type { FastifyInstance } from 'fastify';
import type { PortalConfig } from '../config/portal-config.js';

/**
 * The Content-Security-Policy: everything from the portal's own origin, no inline script, no eval, no
 * third-party host anywhere, no framing. Styles are files too (Preact and Chart.js set styles through the
 * CSSOM, which style-src does not restrict).
 */
export function contentSecurityPolicy(config: PortalConfig): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    ...(config.secureCookies ? ['upgrade-insecure-requests'] : []),
  ].join('; ');
}

export function installSecurityHeaders(fastify: FastifyInstance, config: PortalConfig): void {
  const csp = contentSecurityPolicy(config);
  fastify.addHook('onSend', async (request, reply, payload) => {
    reply.header('content-security-policy', csp);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), publickey-credentials-get=(self), publickey-credentials-create=(self)');
    if (config.secureCookies) reply.header('strict-transport-security', 'max-age=63072000; includeSubDomains');
    const url = request.url;
    if (url.startsWith('/api/') || url === '/' || url.startsWith('/index.html')) reply.header('cache-control', 'no-store');
    else if (url.startsWith('/assets/')) reply.header('cache-control', 'public, max-age=31536000, immutable');
    return payload;
  });
}
