// A real OpenID provider (npm `oidc-provider`) on loopback, for Gantry's OIDC client tests.
//
// One confidential client, PKCE (S256) required, scopes `openid email profile groups`, and an
// in-memory account store. Logging in is a plain HTML form (POST `login=alice`); consent is given
// automatically, so a test drives the whole flow with plain HTTP and a cookie jar.
//
//   node server.mjs --port 0 --client-id gantry --client-secret s3cret \
//     --redirect-uri http://127.0.0.1:8080/auth/oidc/callback
//
// Each option can also come from the environment: OIDC_PORT, OIDC_CLIENT_ID,
// OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI. Port 0 picks a free port. When listening it prints one
// line, `ready <issuer-url>`, on stdout. With --exit-on-stdin-close it exits when its standard
// input closes, so a test that dies without cleaning up does not leave it running.
//
// Not for production: keys and sessions live in memory and vanish on exit.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

// stdout carries only the `ready` line, so a caller may stop reading it after that: the
// provider's own notices (console.info) go to stderr with its warnings.
console.info = (...args) => console.error(...args);
process.stdout.on('error', () => {});

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});

function setting(name, env, fallback) {
  const value = args[name] ?? process.env[env] ?? fallback;
  if (value === undefined || value === '') {
    process.stderr.write(`missing --${name} (or ${env})\n`);
    process.exit(2);
  }
  return value;
}

const port = Number(setting('port', 'OIDC_PORT', '0'));
const clientId = setting('client-id', 'OIDC_CLIENT_ID');
const clientSecret = setting('client-secret', 'OIDC_CLIENT_SECRET');
const redirectUri = setting('redirect-uri', 'OIDC_REDIRECT_URI');

const ACCOUNTS = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Example',
    groups: ['platform', 'sre'],
  },
  bob: {
    email: 'bob@example.com',
    email_verified: false,
    name: 'Bob Example',
    groups: [],
  },
};

// The listener comes first: with port 0 the issuer URL is known only once it is bound.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

// A fresh signing key per run, so the provider does not fall back to its built-in development key.
const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  alg: 'RS256',
  use: 'sig',
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: {
    keys: [randomBytes(32).toString('hex')],
    // The default `SameSite=None` for the session cookie is only valid on Secure cookies,
    // which a plain-http loopback issuer cannot set.
    long: { httpOnly: true, sameSite: 'lax', signed: true },
    short: { httpOnly: true, sameSite: 'lax', signed: true },
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // Claims requested by scope go in the ID token too, not only in the userinfo response:
  // that is where the client reads them.
  conformIdTokenClaims: false,
  pkce: { methods: ['S256'], required: () => true },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...account }) };
  },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// Any error here is an unexpected one and goes to stderr without request details.
provider.on('server_error', (ctx, error) => process.stderr.write(`server_error: ${error.message}\n`));

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginForm(uid, message) {
  return `<!doctype html>
<html><head><title>Sign in</title></head><body>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label>Login <input name="login" autofocus></label>
  <button type="submit">Sign in</button>
</form>
</body></html>
`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

// GET /interaction/:uid shows the login form, or grants consent at once;
// POST /interaction/:uid/login logs in the named account.
async function interaction(req, res, path) {
  const details = await provider.interactionDetails(req, res);
  const [, , uid, action] = path.split('/');
  if (uid !== details.uid) {
    send(res, 400, 'text/plain', 'interaction does not match its cookie\n');
    return;
  }
  const { prompt, params, session, grantId } = details;

  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const login = (await readForm(req)).get('login') ?? '';
    if (!Object.hasOwn(ACCOUNTS, login)) {
      send(res, 200, 'text/html; charset=utf-8', loginForm(uid, 'unknown account'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }

  if (req.method === 'GET' && action === undefined && prompt.name === 'login') {
    send(res, 200, 'text/html; charset=utf-8', loginForm(uid));
    return;
  }

  if (req.method === 'GET' && action === undefined && prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, {
      mergeWithLastSubmission: true,
    });
    return;
  }

  send(res, 400, 'text/plain', `cannot ${req.method} ${action ?? ''} during the ${prompt.name} prompt\n`);
}

const handleProtocol = provider.callback();
server.on('request', (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  if (!path.startsWith('/interaction/')) {
    handleProtocol(req, res);
    return;
  }
  interaction(req, res, path).catch((error) => {
    // An expired or missing interaction cookie lands here: a client error, not a crash.
    if (!res.headersSent) send(res, 400, 'text/plain', `interaction failed: ${error.message}\n`);
    else res.end();
  });
});

if (args['exit-on-stdin-close']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));

process.stdout.write(`ready ${issuer}\n`);
