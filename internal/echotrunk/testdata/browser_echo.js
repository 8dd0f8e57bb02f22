// Drives headless Chromium against the echo trunk: the page makes a real
// WebRTC offer (fake microphone), the Go test relays it to the trunk as a
// SIP INVITE (POST /call), and the page reports its RTP counters once the
// echo comes back. Prints one JSON line: {inb, out, ice}.
const { chromium } = require('playwright-core');

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(process.env.PAGE_URL);
    const result = await page.evaluate(async () => {
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const t0 = performance.now();
      const ms = {};
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const pc = new RTCPeerConnection({ iceServers: [] });
      stream.getTracks().forEach((t) => pc.addTrack(t, stream));
      await pc.setLocalDescription(await pc.createOffer());
      for (let i = 0; i < 50 && pc.iceGatheringState !== 'complete'; i++) await sleep(100);
      ms.gathered = Math.round(performance.now() - t0);
      const res = await fetch('/call', { method: 'POST', body: pc.localDescription.sdp });
      if (!res.ok) throw new Error('call: ' + res.status + ' ' + (await res.text()));
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      ms.answered = Math.round(performance.now() - t0);
      const stats = async () => {
        const s = { inb: 0, out: 0, ice: pc.iceConnectionState };
        (await pc.getStats()).forEach((r) => {
          if (r.kind !== 'audio') return;
          if (r.type === 'inbound-rtp') s.inb += r.packetsReceived || 0;
          if (r.type === 'outbound-rtp') s.out += r.packetsSent || 0;
        });
        return s;
      };
      let s = await stats();
      for (let i = 0; i < 100 && s.inb < 25; i++) {
        await sleep(100);
        s = await stats();
      }
      ms.echoed = Math.round(performance.now() - t0);
      s.ms = ms;
      await fetch('/bye', { method: 'POST' });
      pc.close();
      return s;
    });
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
