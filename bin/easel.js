#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm ci` through the prepare script).
try {
  await import('../dist/cli/index.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/index.js')) {
    console.error('easel: dist/ is missing: run `npm run build` (or `npm ci`) in the repository first.');
    process.exit(1);
  }
  throw error;
}
