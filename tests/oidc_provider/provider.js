// A real OpenID provider (the oidc-provider package) for Autoclerk's single sign-on test, on loopback only.
// Its development login and consent pages take any user name: the account's groups come from ACCOUNTS.
//   LISTEN_FD=N (a socket bound on 127.0.0.1) CLIENT_ID=… CLIENT_SECRET=… REDIRECT_URI=… ACCOUNTS='{"carol":["benefits"]}' node provider.js
// It prints "listening on ISSUER" once it accepts connections.
import http from 'node:http';
import Provider from 'oidc-provider';

const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
const server = http.createServer();
const where = process.env.LISTEN_FD ? { fd: Number(process.env.LISTEN_FD) } : { port: 0, host: '127.0.0.1' };
server.listen(where, () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, preferred_username: id, name: id, groups: accounts[id] || [] }),
    }),
    cookies: { keys: ['a test key, loopback only'] },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  console.log(`listening on ${issuer}`);
});
