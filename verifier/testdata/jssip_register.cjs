// Registers with JsSIP over WebSocket using authorization_jwt, as a
// browser page does. Env: WS_URL, TOKEN, USER, DOMAIN, EXPECT
// ("registered" or "failed"). Prints "registered" or "failed: <cause>"
// and exits 0 when the outcome is the expected one.
globalThis.WebSocket = require('ws');
const JsSIP = require('jssip');

const { WS_URL, TOKEN, USER, DOMAIN, EXPECT } = process.env;
const socket = new JsSIP.WebSocketInterface(WS_URL);
const ua = new JsSIP.UA({
  sockets: [socket],
  uri: `sip:${USER}@${DOMAIN}`,
  authorization_jwt: `Bearer ${TOKEN}`,
  register: true,
  register_expires: 300,
  connection_recovery_min_interval: 60,
  connection_recovery_max_interval: 60,
});
const finish = (outcome) => {
  console.log(outcome);
  ua.stop();
  setTimeout(() => process.exit(outcome.startsWith(EXPECT) ? 0 : 1), 200);
};
ua.on('registered', () => finish('registered'));
ua.on('registrationFailed', (e) => finish(`failed: ${e.cause} ${e.response ? e.response.status_code : ''}`));
setTimeout(() => finish('failed: timeout'), 10000);
ua.start();
