// The customer's page: log in at the customer's backend, exchange the
// credential it mints at the hosted issuer, register with JsSIP, keep the
// token fresh, and call the echo test trunk.
//
// Two flows share this file (document.body.dataset.flow):
//   jwt    — POST /api/assertion → issuer /v1/token {assertion} →
//            JsSIP authorization_jwt "Bearer <edge token>";
//   legacy — POST /api/ephemeral → issuer /v1/token {customer, username,
//            password} → JsSIP Digest with the returned ephemeral
//            username/password.
//
// Elements with stable ids (#status, #call-state, #rtp-in, #rtp-out) and
// window.demo let a browser test read and drive the page.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const flow = document.body.dataset.flow === 'legacy' ? 'legacy' : 'jwt';
  const REFRESH_AT = 0.8; // refresh credentials at 80% of their lifetime
  const RETRY_MS = 10000;

  const state = {
    flow: flow,
    user: null,
    status: '',
    error: null,
    registered: false,
    uri: null,
    realm: null,
    websocket: null,
    iceServers: [],
    expiresAt: 0,
    refreshes: 0,
    call: 'idle',
    echoURI: null,
  };
  const counters = { packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0 };
  let config = {};
  let ua = null;
  let session = null;
  let refreshTimer = null;
  let statsTimer = null;

  function setStatus(text, isError) {
    state.status = text;
    state.error = isError ? text : null;
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  function setCall(text) {
    state.call = text;
    $('call-state').textContent = text;
  }

  function buttons() {
    $('logout').disabled = !state.user;
    $('call').disabled = !state.registered || !!session;
    $('hangup').disabled = !session;
  }

  // request fetches JSON and turns every failure into an Error whose
  // message says which step failed and why.
  async function request(url, options, what) {
    let res;
    try {
      res = await fetch(url, options);
    } catch (e) {
      throw new Error(what + ': cannot reach ' + url + ' (' + e.message + '; is it running, and does it allow this origin?)');
    }
    const text = await res.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    if (!res.ok) {
      const detail = (body && (body.error_description || body.error)) || text.trim() || res.statusText;
      throw new Error(what + ' failed (' + res.status + '): ' + detail);
    }
    return body;
  }

  function postJSON(url, body, what, credentials) {
    return request(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body || {}),
      credentials: credentials || 'same-origin',
    }, what);
  }

  // getToken asks this site for a fresh credential and exchanges it at the
  // issuer. The issuer is another origin: no cookies go there.
  async function getToken() {
    if (flow === 'jwt') {
      const a = await postJSON('/api/assertion', {}, 'Assertion from this site');
      return postJSON(a.issuer + '/v1/token', { assertion: a.assertion }, 'Token from the issuer', 'omit');
    }
    const e = await postJSON('/api/ephemeral', {}, 'Credential from this site');
    const tok = await postJSON(e.issuer + '/v1/token',
      { customer: e.customer, username: e.username, password: e.password }, 'Token from the issuer', 'omit');
    if (!tok.ephemeral || !tok.ephemeral.username) {
      throw new Error('The issuer returned no ephemeral Digest credentials (is an ephemeral secret configured?)');
    }
    return tok;
  }

  function hostOf(uri) {
    const at = uri.indexOf('@');
    return (at >= 0 ? uri.slice(at + 1) : uri.replace(/^sips?:/, '')).split(/[;:>]/)[0];
  }

  // applyToken records what a token response says and schedules the next
  // refresh; it returns the token's lifetime in seconds.
  function applyToken(tok) {
    if (!tok || !tok.sip || !tok.sip.uri || !Array.isArray(tok.sip.websocket) || !tok.sip.websocket.length) {
      throw new Error('The token response lacks sip.uri or sip.websocket');
    }
    let lifetime = Number(tok.expires_in) || 60;
    if (flow === 'legacy' && tok.ephemeral.expires_at) {
      lifetime = Math.min(lifetime, tok.ephemeral.expires_at - Date.now() / 1000);
    }
    state.uri = tok.sip.uri;
    state.realm = tok.sip.realm || hostOf(tok.sip.uri);
    state.websocket = tok.sip.websocket[0];
    state.iceServers = tok.ice_servers || [];
    state.expiresAt = Date.now() + lifetime * 1000;
    state.echoURI = config.echo_uri || 'sip:echo@' + state.realm;
    $('sip-uri').textContent = state.uri;
    $('token-expiry').textContent = new Date(state.expiresAt).toLocaleTimeString();
    $('echo-uri').textContent = state.echoURI;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, Math.max(5, lifetime * REFRESH_AT) * 1000);
  }

  function describe(e) {
    let s = (e && e.cause) || 'unknown cause';
    const r = e && (e.response || e.message);
    if (r && r.status_code) {
      s += ' (' + r.status_code + ' ' + r.reason_phrase + ')';
    }
    return s;
  }

  function startUA(tok) {
    const cfg = {
      sockets: [new JsSIP.WebSocketInterface(state.websocket)],
      uri: tok.sip.uri,
      register: true,
      session_timers: false,
      user_agent: 'trunkpass-demo JsSIP',
    };
    if (flow === 'jwt') {
      cfg.authorization_jwt = 'Bearer ' + tok.access_token;
    } else {
      cfg.authorization_user = tok.ephemeral.username;
      cfg.password = tok.ephemeral.password;
    }
    ua = new JsSIP.UA(cfg);
    ua.on('connecting', () => setStatus('Connecting to ' + state.websocket + '…'));
    ua.on('connected', () => setStatus('Connected; registering as ' + state.uri + '…'));
    ua.on('disconnected', () => {
      state.registered = false;
      buttons();
      if (state.user) {
        setStatus('The WebSocket to ' + state.websocket + ' is closed; JsSIP keeps retrying.', true);
      }
    });
    ua.on('registered', () => {
      state.registered = true;
      buttons();
      setStatus('Registered as ' + state.uri + '.');
    });
    ua.on('unregistered', () => {
      state.registered = false;
      buttons();
    });
    ua.on('registrationFailed', (e) => {
      state.registered = false;
      buttons();
      setStatus('Registration failed: ' + describe(e), true);
    });
    ua.on('newRTCSession', (e) => {
      if (e.originator === 'remote') {
        e.session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      }
    });
    ua.start();
  }

  // refresh gets a new token before the old one expires and re-registers
  // with it, so the registration never lapses.
  async function refresh() {
    if (!ua) {
      return;
    }
    try {
      const tok = await getToken();
      if (!ua) {
        return;
      }
      applyToken(tok);
      if (flow === 'jwt') {
        ua.set('authorization_jwt', 'Bearer ' + tok.access_token);
      } else {
        ua.set('authorization_user', tok.ephemeral.username);
        ua.set('password', tok.ephemeral.password);
      }
      ua.register();
      state.refreshes++;
      $('refreshes').textContent = String(state.refreshes);
    } catch (e) {
      setStatus('Token refresh failed: ' + e.message + ' — retrying in ' + RETRY_MS / 1000 + ' s.', true);
      refreshTimer = setTimeout(refresh, RETRY_MS);
    }
  }

  function stopUA() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    if (session) {
      session.terminate();
    }
    if (ua) {
      ua.stop();
      ua = null;
    }
    state.registered = false;
    buttons();
  }

  async function login(user) {
    user = String(user || '').trim();
    stopUA();
    try {
      if (typeof JsSIP === 'undefined') {
        throw new Error('JsSIP is not loaded: run `npm ci && npm run build:jssip` in the repository root and reload.');
      }
      setStatus('Logging in as ' + user + '…');
      await postJSON('/login', { user: user }, 'Login');
      state.user = user;
      buttons();
      setStatus(flow === 'jwt' ? 'Getting an edge token with an assertion…' : 'Getting Digest credentials with an ephemeral credential…');
      const tok = await getToken();
      applyToken(tok);
      startUA(tok);
    } catch (e) {
      setStatus(e.message, true);
      throw e;
    }
  }

  async function logout() {
    stopUA();
    state.user = null;
    buttons();
    try {
      await request('/logout', { method: 'POST', credentials: 'same-origin' }, 'Logout');
      setStatus('Logged out.');
    } catch (e) {
      setStatus(e.message, true);
    }
  }

  // pollStats copies the call's audio RTP counters into the page; the
  // last values stay shown after the call ends.
  async function pollStats() {
    const current = session;
    const pc = current && current.connection;
    if (!pc || pc.connectionState === 'closed') {
      return;
    }
    let report;
    try {
      report = await pc.getStats();
    } catch (_) {
      return;
    }
    if (session !== current || pc.connectionState === 'closed') {
      return;
    }
    const c = { packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0 };
    report.forEach((s) => {
      if ((s.kind || s.mediaType) !== 'audio') {
        return;
      }
      if (s.type === 'outbound-rtp') {
        c.packetsSent += s.packetsSent || 0;
        c.bytesSent += s.bytesSent || 0;
      } else if (s.type === 'inbound-rtp') {
        c.packetsReceived += s.packetsReceived || 0;
        c.bytesReceived += s.bytesReceived || 0;
      }
    });
    Object.assign(counters, c);
    $('rtp-in').textContent = String(c.packetsReceived);
    $('rtp-out').textContent = String(c.packetsSent);
  }

  function callEnded(text) {
    setCall(text);
    clearInterval(statsTimer);
    statsTimer = null;
    session = null;
    buttons();
  }

  function call() {
    if (!ua || !state.registered || session) {
      return;
    }
    Object.assign(counters, { packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0 });
    $('rtp-in').textContent = '0';
    $('rtp-out').textContent = '0';
    setCall('calling ' + state.echoURI);
    session = ua.call(state.echoURI, {
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: state.iceServers },
      eventHandlers: {
        peerconnection: (e) => {
          e.peerconnection.addEventListener('track', (ev) => {
            $('remote-audio').srcObject = ev.streams[0] || new MediaStream([ev.track]);
          });
        },
        progress: () => setCall('ringing'),
        accepted: () => setCall('answered'),
        confirmed: () => {
          setCall('in call');
          statsTimer = setInterval(pollStats, 1000);
        },
        ended: (e) => callEnded('ended: ' + describe(e)),
        failed: (e) => callEnded('failed: ' + describe(e)),
        getusermediafailed: (err) => setStatus('No microphone: ' + err, true),
      },
    });
    buttons();
  }

  function hangup() {
    if (session) {
      session.terminate();
    }
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    login($('user').value).catch(() => {});
  });
  $('logout').addEventListener('click', logout);
  $('call').addEventListener('click', call);
  $('hangup').addEventListener('click', hangup);
  window.addEventListener('beforeunload', () => {
    if (ua) {
      ua.stop();
    }
  });

  window.demo = {
    state: state,
    stats: () => Object.assign({}, counters),
    login: login,
    logout: logout,
    call: call,
    hangup: hangup,
  };

  request('/api/config', { credentials: 'same-origin' }, 'Site configuration').then((c) => {
    config = c || {};
    if (typeof JsSIP === 'undefined') {
      setStatus('JsSIP is not loaded: run `npm ci && npm run build:jssip` in the repository root and reload.', true);
    } else {
      setStatus('Not logged in. Issuer: ' + config.issuer);
    }
  }).catch((e) => setStatus(e.message, true));
  buttons();
})();
