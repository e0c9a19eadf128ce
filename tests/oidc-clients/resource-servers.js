// The two example resource servers, each on a free loopback port, following a running
// `jwt-auth serve` (server.js) with a service client of their own: the Rust one
// (examples/resource-server, the binary RESOURCE_SERVER_BIN names) and the FastAPI one
// (examples/fastapi-resource-server/app.py under uvicorn, with the Python FASTAPI_PYTHON names,
// that of its virtualenv). test.sh builds and installs both.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from './server.js';

const FASTAPI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'fastapi-resource-server');

async function start(name, command, args, cwd, env) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(command, args(port), {
    cwd,
    env: { PATH: process.env.PATH, ...env(port, url) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited = null;
  child.once('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`${name} exited (${exited})`);
    try {
      // 200 once it has the issuer's keys and its revocation feed.
      if ((await fetch(`${url}/ready`)).status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${name} was not ready in 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    /** Stops it; resolves once it has exited. */
    stop() {
      if (exited !== null) return Promise.resolve();
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      return gone;
    },
  };
}

/**
 * Starts both examples against `server` for access tokens of `audience`; `settings` adds to
 * their environment (e.g. CORS_ORIGINS). Each one's `url` and `stop()`.
 */
export async function startResourceServers(server, audience, settings = {}) {
  const rustBinary = process.env.RESOURCE_SERVER_BIN;
  const python = process.env.FASTAPI_PYTHON;
  if (!rustBinary) throw new Error('RESOURCE_SERVER_BIN names the resource-server binary');
  if (!python) throw new Error("FASTAPI_PYTHON names the Python of the FastAPI example's virtualenv");
  const settingsFor = (port, url) => {
    // Each with its own service client, which follows the revocation feed.
    const feed = server.addClient(`stocks-api-${port}`, []);
    return {
      JWT_AUTH_URL: server.url,
      JWT_AUDIENCE: audience,
      CLIENT_ID: feed.client_id,
      CLIENT_SECRET: feed.client_secret,
      // The URL its clients call, which their DPoP proofs name (htu).
      PUBLIC_URL: url,
      ...settings,
    };
  };
  const rust = await start('resource-server', rustBinary, () => [], undefined, (port, url) => ({
    BIND_ADDRESS: `127.0.0.1:${port}`,
    ...settingsFor(port, url),
  }));
  let fastapi;
  try {
    fastapi = await start(
      'the FastAPI example',
      python,
      (port) => ['-m', 'uvicorn', 'app:app', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warning'],
      FASTAPI_DIR,
      settingsFor,
    );
  } catch (err) {
    await rust.stop();
    throw err;
  }
  return {
    rust,
    fastapi,
    stop() {
      return Promise.all([rust.stop(), fastapi.stop()]);
    },
  };
}
