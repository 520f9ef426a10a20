import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC (not esbuild) transpiles the tests so that Nest's decorator metadata is emitted.
// The "source" condition resolves the package's #imports to TypeScript sources instead of dist/.
const shared = {
  plugins: [swc.vite({ module: { type: 'es6' } })],
  resolve: { conditions: ['source', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['source', 'node', 'import', 'default'], externalConditions: ['source'] } },
};

export default defineConfig({
  ...shared,
  test: {
    projects: [
      { ...shared, test: { name: 'unit', include: ['{apps,libs,test}/**/*.unit.spec.ts'] } },
      {
        ...shared,
        test: { name: 'int', include: ['{apps,libs,test}/**/*.int.spec.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
      },
      {
        ...shared,
        test: {
          name: 'e2e',
          include: ['{apps,libs,test}/**/*.e2e.spec.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
