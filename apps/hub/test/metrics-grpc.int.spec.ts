import { Server, ServerCredentials, credentials, makeGenericClientConstructor, status, type ServiceDefinition } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcMetricsInterceptor } from '../src/metrics/grpc-metrics.js';
import { HubMetrics } from '../src/metrics/hub-metrics.js';

/** A service of raw bytes: `Echo` answers what it gets, or fails with INVALID_ARGUMENT when it gets nothing. */
const identity = (b: Buffer) => b;
const SERVICE: ServiceDefinition = {
  echo: { path: '/test.v1.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: 'Echo' },
};

const metrics = new HubMetrics();
let server: Server;
let client: InstanceType<ReturnType<typeof makeGenericClientConstructor>>;

function call(body: Buffer): Promise<number> {
  return new Promise((done) => (client as unknown as { echo: (b: Buffer, cb: (e: { code: number } | null) => void) => void }).echo(body, (error) => done(error?.code ?? status.OK)));
}

beforeAll(async () => {
  server = new Server({ interceptors: [grpcMetricsInterceptor(metrics.grpcDuration)] });
  server.addService(SERVICE, {
    echo: (c: { request: Buffer }, cb: (e: { code: number; details: string } | null, r?: Buffer) => void) => (c.request.length === 0 ? cb({ code: status.INVALID_ARGUMENT, details: 'empty' }) : cb(null, c.request)),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  client = new (makeGenericClientConstructor(SERVICE, 'Echo'))(`127.0.0.1:${port}`, credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

describe('the gRPC metrics interceptor', () => {
  it('observes each call once under its method path and status code name, never its messages', async () => {
    expect(await call(Buffer.from('a personal value 123456789012'))).toBe(status.OK);
    expect(await call(Buffer.alloc(0))).toBe(status.INVALID_ARGUMENT);
    expect(await call(Buffer.from('x'))).toBe(status.OK);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/linkage_grpc_request_duration_seconds_count\{method="\/test\.v1\.Echo\/Echo",code="OK"\} 2\n/);
    expect(text).toMatch(/linkage_grpc_request_duration_seconds_count\{method="\/test\.v1\.Echo\/Echo",code="INVALID_ARGUMENT"\} 1\n/);
    expect(text).not.toContain('123456789012');
  });
});
