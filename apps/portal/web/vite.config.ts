import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));

// The portal's frontend: built into dist/apps/portal/web, served by the portal's BFF (apps/portal/src).
// No inline script or style is emitted (the CSP forbids them), no module preload polyfill, no CDN.
export default defineConfig({
  root: here,
  base: '/',
  publicDir: resolve(here, 'public'),
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: resolve(here, '../../../dist/apps/portal/web'),
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: true,
    chunkSizeWarningLimit: 600,
  },
  server: { port: 5173, proxy: { '/api': 'http://127.0.0.1:3300' } },
});
