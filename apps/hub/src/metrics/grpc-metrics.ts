import { ServerInterceptingCall, status as GrpcStatus, type ServerInterceptor } from '@grpc/grpc-js';
import type { Histogram } from 'prom-client';

/** gRPC status codes by number, as label values (`OK`, `INVALID_ARGUMENT`, …). */
const CODE_NAMES: readonly string[] = Object.entries(GrpcStatus)
  .filter(([, v]) => typeof v === 'number')
  .sort((a, b) => (a[1] as number) - (b[1] as number))
  .map(([k]) => k);

/**
 * A gRPC server interceptor that observes every call in `histogram` (seconds; labels: the full method
 * path, e.g. `/linkage_ledger.v1.Linkage/Query`, and the status code's name) when its status is sent.
 * Method paths are the services' own (bounded); nothing of the call's messages or metadata is read.
 * Given to a grpc-js `Server` as `interceptors: [grpcMetricsInterceptor(histogram)]`.
 */
export function grpcMetricsInterceptor(histogram: Histogram<'method' | 'code'>): ServerInterceptor {
  // One child per method and code, made at first use and kept.
  const children = new Map<string, ReturnType<Histogram<'method' | 'code'>['labels']>[]>();
  const child = (path: string, code: number) => {
    let byCode = children.get(path);
    if (byCode === undefined) children.set(path, (byCode = []));
    return (byCode[code] ??= histogram.labels(path, CODE_NAMES[code] ?? 'UNKNOWN'));
  };
  return (method, call) => {
    const started = performance.now();
    const path = method.path;
    return new ServerInterceptingCall(call, {
      sendStatus: (status, next) => {
        child(path, status.code ?? GrpcStatus.UNKNOWN).observe((performance.now() - started) / 1000);
        next(status);
      },
    });
  };
}
