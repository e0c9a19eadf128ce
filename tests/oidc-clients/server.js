// A real `jwt-auth serve` for the relying-party tests: SQLite in a temporary directory, on a
// free loopback port that is also its PUBLIC_URL (so its issuer is a URL and OpenID Connect is
// on), with a user, and the `jwt-auth` command line to register clients.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const EMAIL = 'alice@example.com';
export const PASSWORD = 'correct horse battery staple';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts the server; `settings` adds to or replaces its environment. */
export async function startServer(settings = {}) {
  const binary = process.env.JWT_AUTH_BIN;
  if (!binary) throw new Error('JWT_AUTH_BIN names the jwt-auth binary');
  const dir = mkdtempSync(join(tmpdir(), 'jwt-auth-rp-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH,
    BIND_ADDRESS: `127.0.0.1:${port}`,
    DATABASE_URL: `sqlite://${join(dir, 'jwt-auth.db')}`,
    DATA_DIR: dir,
    PUBLIC_URL: url,
    LOGIN_RATE_LIMIT: '0',
    LOG_FORMAT: 'json',
    ...settings,
  };
  const cli = (args, input) =>
    execFileSync(binary, args, { env, cwd: dir, input, encoding: 'utf8' });
  cli(['migrate']);
  cli(['user', 'add', '--email', EMAIL, '--password-stdin'], PASSWORD);
  const child = spawn(binary, ['serve'], { env, cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const ready = await fetch(`${url}/ready`);
      if (ready.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error('the server was not ready in 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    /** Registers a client with `args` (after the name); its JSON. */
    addClient(name, args) {
      return JSON.parse(cli(['clients', 'add', name, ...args, '--json']));
    },
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A browser: cookies kept by name, redirects answered, not followed. */
export class Browser {
  constructor() {
    this.cookies = new Map();
  }

  keep(response) {
    for (const set of response.headers.getSetCookie()) {
      const [pair, ...attributes] = set.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      const removed = attributes.some((a) => a.trim().toLowerCase() === 'max-age=0');
      if (value === '' || removed) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url, init = {}) {
    const cookie = [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
    const headers = { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) };
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.keep(response);
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }

  get(url) {
    return this.request(url);
  }

  post(url, form) {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** Runs the server's pages from `authorizeUrl`: signs in, allows; the final redirect. */
  async signIn(authorizeUrl, email = EMAIL, password = PASSWORD) {
    let page = await this.get(authorizeUrl);
    const csrf = (text) => /name="csrf" value="([^"]*)"/.exec(text)?.[1];
    if (page.status === 200 && page.text.includes('name="password"')) {
      page = await this.post(authorizeUrl, { csrf: csrf(page.text), action: 'sign_in', username: email, password });
    }
    if (page.status === 200 && page.text.includes('value="allow"')) {
      page = await this.post(authorizeUrl, { csrf: csrf(page.text), action: 'allow' });
    }
    if (page.status !== 302) throw new Error(`no redirect: ${page.status} ${page.text}`);
    return page.location;
  }
}
