// A real OpenID provider for Keyfob's tests and demo: panva's certified oidc-provider, on
// 127.0.0.1 only. Prints "LISTENING <issuer>" once it serves discovery, then one JSON line per
// token-endpoint grant (grant.success / grant.error), which tests count.
//
// Environment:
//   IDP_PORT      port (default 0: any free port)
//   IDP_AT_TTL    access-token lifetime in seconds (default 60)
//   IDP_RT_TTL    refresh-token lifetime in seconds (default 86400)
import net from 'node:net';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT ?? 0);
const atTtl = Number(process.env.IDP_AT_TTL ?? 60);
const rtTtl = Number(process.env.IDP_RT_TTL ?? 86400);

const log = (obj) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...obj })}\n`);

function configuration() {
  return {
    clients: [
      {
        // A public native app, like a CLI: no secret, loopback redirect, PKCE required.
        client_id: 'keyfob-native',
        token_endpoint_auth_method: 'none',
        application_type: 'native',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
      {
        client_id: 'keyfob-confidential',
        client_secret: 'keyfob-confidential-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        application_type: 'native',
        grant_types: [
          'authorization_code',
          'refresh_token',
          'client_credentials',
          'urn:ietf:params:oauth:grant-type:device_code',
        ],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
    ],
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'api'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      clientCredentials: { enabled: true },
    },
    pkce: { required: () => true, methods: ['S256'] },
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: {
      AccessToken: atTtl,
      ClientCredentials: atTtl,
      RefreshToken: rtTtl,
      DeviceCode: 600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 86400,
      Grant: rtTtl,
    },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@example.test`, email_verified: true, name: `User ${sub}` }),
    }),
    // Every sign-in is granted what it asked for, so no consent page is needed; the login page
    // is still the provider's own, driven as a browser would.
    loadExistingGrant: async (ctx) => {
      const grantId =
        ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const grant = await ctx.oidc.provider.Grant.find(grantId);
        if (grant) return grant;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid offline_access profile email api');
      await grant.save();
      return grant;
    },
  };
}

// Port 0 means any free port; the issuer must name the real one, so find it first.
const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address();
      srv.close(() => resolve(p));
    });
  });
const actualPort = port || (await freePort());
const issuer = `http://127.0.0.1:${actualPort}`;
const provider = new Provider(issuer, configuration());

provider.on('grant.success', (ctx) => {
  log({ event: 'grant.success', grant_type: ctx.oidc.params?.grant_type, client_id: ctx.oidc.client?.clientId });
});
provider.on('grant.error', (ctx, err) => {
  log({
    event: 'grant.error',
    grant_type: ctx.oidc.params?.grant_type,
    error: err.error,
    detail: err.error_detail,
  });
});
provider.on('grant.revoked', (ctx, grantId) => log({ event: 'grant.revoked', grant_id: grantId }));

provider.listen(actualPort, '127.0.0.1', () => log({ event: 'listening', issuer }));

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
