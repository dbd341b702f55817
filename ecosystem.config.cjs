// pm2 process file: `pm2 start ecosystem.config.cjs` (see docs/operations.md).
// One process: ec-server owns its UDP/TCP port and its store; do not use pm2 cluster mode.
module.exports = {
  apps: [
    {
      name: 'ec-server',
      script: 'bin/ec-server.js',
      args: '--config config/config.properties',
      // V8 flags of src/cli/node-flags.ts (a larger young generation: less GC per request).
      node_args: '--max-semi-space-size=64',
      cwd: __dirname,
      exec_mode: 'fork',
      instances: 1,
      autorestart: true,
      // SIGINT first; ec-server answers in-flight batches and closes the store before exiting.
      kill_timeout: 15000,
      max_memory_restart: '1G',
      env: { NODE_ENV: 'production' },
    },
  ],
};
