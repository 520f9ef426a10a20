import { Agent, request } from 'node:https';

/** The agency's certificate from the hub's CA (issued at its registration), its key, and the CA itself. */
export interface AgencyTls {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly caCertificatePem: string;
}

/**
 * A `fetch` for a hub that runs with mutual TLS: it trusts only the hub's CA and presents the agency's
 * certificate as its client certificate (a token alone admits no agency call then), over keep-alive
 * connections. Node's own fetch takes no client certificate (nor a CA of its own) without undici's
 * Agent, hence this. Given only the CA, it is a fetch that trusts the hub's CA (the demo's operator calls).
 */
export function tlsFetch(tls: AgencyTls | { readonly caCertificatePem: string }): typeof fetch {
  const agent = new Agent({ keepAlive: true, ca: tls.caCertificatePem, ...('certificatePem' in tls ? { cert: tls.certificatePem, key: tls.privateKeyPem } : {}) });
  return ((input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      // Plain http (e.g. the demo's portal) goes as before: there is no certificate to check.
      if (url.protocol === 'http:') {
        fetch(input, init).then(resolve, reject);
        return;
      }
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      const body = typeof init.body === 'string' ? Buffer.from(init.body) : undefined;
      const req = request(url, { method: init.method ?? 'GET', agent, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 502;
          const answer = Buffer.concat(chunks);
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve(new Response(answer.length === 0 || status === 204 || status === 304 ? null : answer, { status, headers: out }));
        });
        res.on('error', reject);
      });
      const signal = init.signal;
      if (signal) {
        if (signal.aborted) req.destroy(signal.reason as Error);
        else signal.addEventListener('abort', () => req.destroy(signal.reason as Error), { once: true });
      }
      req.on('error', reject);
      req.end(body);
    })) as typeof fetch;
}
